"""Training batches, reproducible per epoch and resumable.

:class:`RandomBatchSampler` gives the official fine-tuning loader's batches (``DataLoader(shuffle=True,
drop_last=True)``): a fresh random permutation every epoch cut into batches of the configured size, the
last partial batch dropped. :class:`FrameBudgetBatchSampler` groups utterances by length under a
padded-frame budget, which pads less but, on a corpus of a few hundred utterances, serves nearly the
same batches every epoch (only reordered); the trainer uses it only when asked.

Utterance lengths vary from one to thirty seconds; fixed-size batches either waste memory on padding
or run out of it on long items. Here each batch holds items of similar length and
``batch_size * longest_item <= max_frames``. Per epoch the order is drawn from ``(seed, epoch)``:
indices are shuffled, cut into pools, each pool sorted by length and packed greedily, and the
batches shuffled. ``set_epoch(epoch, position)`` resumes mid-epoch after ``position`` batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)


class FrameBudgetBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batch sampler for ``DataLoader(batch_sampler=...)``.

    ``lengths`` are per-item frame counts (``TTSDataset.frame_lengths``). An item longer than the
    budget gets a batch of its own (and a warning at construction). ``pool_batches`` sets how many
    batches' worth of items are sorted together: larger pools pad less, smaller pools mix more.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        max_batch_size: int | None = None,
        pool_batches: int = 50,
    ) -> None:
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError("lengths must be a non-empty list of frame counts")
        if (self.lengths <= 0).any():
            raise ValueError("every length must be positive")
        self.max_frames = int(max_frames)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.max_batch_size = max_batch_size
        self.pool_batches = max(1, pool_batches)
        self.epoch = 0
        self.position = 0
        self._cached: tuple[int, list[list[int]]] | None = None
        too_long = int((self.lengths > self.max_frames).sum())
        if too_long:
            log.warning(
                "%d item(s) exceed the %d-frame budget on their own; each gets a batch of one",
                too_long,
                self.max_frames,
            )

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in order.tolist():
            n = int(self.lengths[i])
            new_longest = max(longest, n)
            full = self.max_batch_size is not None and len(current) >= self.max_batch_size
            if current and (full or new_longest * (len(current) + 1) > self.max_frames):
                batches.append(current)
                current, new_longest = [], n
            current.append(i)
            longest = new_longest
        if current:
            batches.append(current)
        return batches

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one), in the order they are served."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            result = self._pack(order)
        else:
            rng = np.random.default_rng([self.seed, epoch])
            perm = rng.permutation(len(self.lengths))
            typical = max(1, self.max_frames // max(1, int(np.median(self.lengths))))
            if self.max_batch_size:
                typical = min(typical, self.max_batch_size)
            pool = typical * self.pool_batches
            result = []
            for start in range(0, len(perm), pool):
                chunk = perm[start : start + pool]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                result.extend(self._pack(chunk))
            result = [result[i] for i in rng.permutation(len(result))]
        self._cached = (epoch, result)
        return result

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        """Serve ``epoch`` from its ``position``-th batch on (0 = from the start)."""
        total = len(self.batches(epoch))
        if not 0 <= position <= total:
            raise ValueError(f"position {position} is outside epoch {epoch}'s {total} batches")
        self.epoch, self.position = int(epoch), int(position)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "max_frames": self.max_frames,
        }

    def load_state_dict(self, state: dict) -> None:
        if (
            state.get("seed", self.seed) != self.seed
            or state.get("max_frames", self.max_frames) != self.max_frames
        ):
            raise ValueError(
                f"sampler state was saved with seed={state.get('seed')}, "
                f"max_frames={state.get('max_frames')}; "
                f"this sampler has seed={self.seed}, max_frames={self.max_frames}"
            )
        self.set_epoch(state["epoch"], state["position"])

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(b) for b in self.batches()[self.position :])

    def __len__(self) -> int:
        return len(self.batches()) - self.position


class RandomBatchSampler(torch.utils.data.Sampler[list[int]]):
    """The official loader's batches: per epoch a permutation drawn from ``(seed, epoch)``, cut into
    batches of ``batch_size``; the last partial batch is dropped (``drop_last=True``), so an epoch has
    ``n // batch_size`` batches, the epoch length the settings use to turn epochs into steps."""

    def __init__(self, n: int, batch_size: int, *, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if n < batch_size:
            raise ValueError(
                f"{n} utterance(s) is fewer than one batch of {batch_size}: the last partial batch is "
                "dropped (as by the official loader), so no batch would be left; lower --batch-size"
            )
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0
        self.position = 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one), in the order they are served."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n).tolist()
        count = self.n // self.batch_size
        result = [perm[k * self.batch_size : (k + 1) * self.batch_size] for k in range(count)]
        self._cached = (epoch, result)
        return result

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        """Serve ``epoch`` from its ``position``-th batch on (0 = from the start)."""
        total = len(self.batches(epoch))
        if not 0 <= position <= total:
            raise ValueError(f"position {position} is outside epoch {epoch}'s {total} batches")
        self.epoch, self.position = int(epoch), int(position)

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(b) for b in self.batches()[self.position :])

    def __len__(self) -> int:
        return len(self.batches()) - self.position
