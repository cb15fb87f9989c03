"""Training batches with the official StyleTTS 2 data semantics (``meldataset.py``).

Per utterance: the waveform padded with 5000 zeros at both ends; the log-mel of that padded waveform
cut to an even number of frames; token ids with a 0 at both ends; a reference mel from a random
utterance of the same speaker (possibly itself, as officially), randomly cropped to at most 192
frames. Randomness comes from ``(seed, epoch, index)`` only, so batches are reproducible whatever
the number of loader workers. The collate function sorts a batch by mel length, longest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..text.symbols import SYMBOL_TO_ID
from .cache import load_features
from .prepare import PreparedUtterance

REF_FRAMES = 192  # the official reference-mel crop length


def encode_phonemes(phonemes: str, vocab: dict[str, int] | None = None) -> list[int]:
    """Official training token ids: unknown characters dropped, 0 at start and end. ``vocab`` is a
    model's own table (Kokoro's); the StyleTTS 2 one by default. Kokoro wraps its ids the same way."""
    table = SYMBOL_TO_ID if vocab is None else vocab
    return [0, *(table[c] for c in phonemes if c in table), 0]


def model_vocab(model) -> dict[str, int] | None:
    """The phoneme vocabulary a model's config names (None: the StyleTTS 2 table)."""
    from ..models.styletts2.config import text_settings

    return text_settings(getattr(model, "config", None) or {})["vocab"]


class TTSDataset(torch.utils.data.Dataset):
    """Prepared utterances -> per-utterance sample dicts for :func:`collate`.

    ``vocab`` is the model's phoneme vocabulary (:func:`model_vocab`; default the StyleTTS 2 table).
    ``multispeaker=False`` uses each utterance's own mel as its reference. ``ood_phonemes`` (optional)
    adds an out-of-distribution text per sample (the official SLM-adversarial input, at least
    ``ood_min_length`` characters). ``speaker_map`` fixes speaker -> integer id (default: sorted order).
    """

    def __init__(
        self,
        items: Sequence[PreparedUtterance],
        *,
        seed: int = 0,
        multispeaker: bool = True,
        ref_frames: int = REF_FRAMES,
        speaker_map: dict[str, int] | None = None,
        ood_phonemes: Sequence[str] | None = None,
        ood_min_length: int = 50,
        vocab: dict[str, int] | None = None,
    ) -> None:
        self.items = list(items)
        self.vocab = vocab
        if not self.items:
            raise ValueError("TTSDataset needs at least one prepared utterance")
        self.seed = seed
        self.epoch = 0
        self.multispeaker = multispeaker
        self.ref_frames = ref_frames
        speakers = sorted({p.speaker for p in self.items})
        self.speaker_map = (
            dict(speaker_map) if speaker_map is not None else {s: i for i, s in enumerate(speakers)}
        )
        missing = [s for s in speakers if s not in self.speaker_map]
        if missing:
            raise ValueError(f"speaker_map has no id for speaker(s) {', '.join(missing[:5])}")
        self.tokens = [encode_phonemes(p.phonemes, vocab) for p in self.items]
        self.by_speaker: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(self.items):
            self.by_speaker[p.speaker].append(i)
        self.ood = None
        if ood_phonemes is not None:
            self.ood = [encode_phonemes(t, vocab) for t in ood_phonemes if len(t) >= ood_min_length]
            if not self.ood:
                raise ValueError(f"no out-of-distribution text has at least {ood_min_length} characters")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def frame_lengths(self) -> list[int]:
        """Even-cut mel frames per item (for :class:`FrameBudgetBatchSampler`), known without loading."""
        return [p.num_frames - p.num_frames % 2 for p in self.items]

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws (references, crops); call before each epoch's loader is iterated."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        rng = self.rng(index)
        wave, full_mel, meta = load_features(item.features)
        pad = int(meta.get("settings", {}).get("edge_padding", 5000))
        wave = torch.nn.functional.pad(wave, (pad, pad))
        mel = full_mel[:, : full_mel.shape[1] - full_mel.shape[1] % 2]
        if self.multispeaker:
            pool = self.by_speaker[item.speaker]
            ref_index = pool[int(rng.integers(len(pool)))]
        else:
            ref_index = index
        # the official reference is the uncut mel of the chosen utterance
        ref_mel = full_mel if ref_index == index else load_features(self.items[ref_index].features)[1]
        if ref_mel.shape[1] > self.ref_frames:
            start = int(rng.integers(0, ref_mel.shape[1] - self.ref_frames))
            ref_mel = ref_mel[:, start : start + self.ref_frames]
        sample = {
            "id": item.id,
            "speaker": item.speaker,
            "speaker_id": self.speaker_map[item.speaker],
            "phonemes": item.phonemes,
            "text": item.utterance.text,
            "tokens": torch.tensor(self.tokens[index], dtype=torch.long),
            "wave": wave,
            "mel": mel,
            "ref_mel": ref_mel,
            "ref_id": self.items[ref_index].id,
            "ref_frames": self.ref_frames,
        }
        if self.ood is not None:
            sample["ood_tokens"] = torch.tensor(self.ood[int(rng.integers(len(self.ood)))], dtype=torch.long)
        return sample


@dataclass
class Batch:
    """A padded batch. Masks are True at padded positions (the official convention)."""

    ids: list[str]
    speakers: list[str]
    speaker_ids: torch.Tensor  # [B] long
    phonemes: list[str]
    texts: list[str]
    tokens: torch.Tensor  # [B, L] long, 0-padded
    token_lengths: torch.Tensor  # [B]
    text_mask: torch.Tensor  # [B, L] bool
    waves: torch.Tensor  # [B, S] edge-padded waveforms, 0-padded on the right
    wave_lengths: torch.Tensor  # [B]
    mels: torch.Tensor  # [B, 80, T]
    mel_lengths: torch.Tensor  # [B] (even)
    mel_mask: torch.Tensor  # [B, T] bool
    ref_mels: torch.Tensor  # [B, 80, ref_frames]
    ref_mel_lengths: torch.Tensor  # [B]
    ref_ids: list[str]
    ood_tokens: torch.Tensor | None = None  # [B, L'] long
    ood_token_lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return Batch(**moved)

    def pin_memory(self) -> Batch:
        return Batch(
            **{
                f.name: (v.pin_memory() if isinstance(v, torch.Tensor) else v)
                for f in fields(self)
                for v in [getattr(self, f.name)]
            }
        )


def _pad_stack(seqs: Sequence[torch.Tensor], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad tensors on their last axis to a common length; return ``(stacked, lengths)``."""
    lengths = torch.tensor([s.shape[-1] for s in seqs], dtype=torch.long)
    width = int(lengths.max()) if length is None else length
    out = seqs[0].new_zeros((len(seqs), *seqs[0].shape[:-1], width))
    for i, s in enumerate(seqs):
        out[i, ..., : s.shape[-1]] = s
    return out, lengths


def _mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width).unsqueeze(0) >= lengths.unsqueeze(1)


def collate(samples: Sequence[dict]) -> Batch:
    """Pad a list of :class:`TTSDataset` samples into a :class:`Batch`, longest mel first."""
    order = sorted(range(len(samples)), key=lambda i: -samples[i]["mel"].shape[1])
    s = [samples[i] for i in order]
    tokens, token_lengths = _pad_stack([x["tokens"] for x in s])
    waves, wave_lengths = _pad_stack([x["wave"] for x in s])
    mels, mel_lengths = _pad_stack([x["mel"] for x in s])
    ref_width = max([s[0]["ref_frames"], *(x["ref_mel"].shape[1] for x in s)])
    ref_mels, ref_lengths = _pad_stack([x["ref_mel"] for x in s], ref_width)
    ood = ood_lengths = None
    if "ood_tokens" in s[0]:
        ood, ood_lengths = _pad_stack([x["ood_tokens"] for x in s])
    return Batch(
        ids=[x["id"] for x in s],
        speakers=[x["speaker"] for x in s],
        speaker_ids=torch.tensor([x["speaker_id"] for x in s], dtype=torch.long),
        phonemes=[x["phonemes"] for x in s],
        texts=[x["text"] for x in s],
        tokens=tokens,
        token_lengths=token_lengths,
        text_mask=_mask(token_lengths, tokens.shape[1]),
        waves=waves,
        wave_lengths=wave_lengths,
        mels=mels,
        mel_lengths=mel_lengths,
        mel_mask=_mask(mel_lengths, mels.shape[2]),
        ref_mels=ref_mels,
        ref_mel_lengths=ref_lengths,
        ref_ids=[x["ref_id"] for x in s],
        ood_tokens=ood,
        ood_token_lengths=ood_lengths,
    )
