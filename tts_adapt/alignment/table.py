"""Token durations of every utterance, computed once and cached.

While the aligner is frozen (the first stage before TMA, and the second stage), its monotonic alignment
of an utterance is a fixed function of the mel and the tokens, yet the official loop recomputes it
every step: a CNN, a step-by-step attention decoder and a dynamic programme per utterance. Computing it
once turns that cost into a table lookup, which is most of what makes pre-training affordable on a
CPU. The table records which aligner (or recogniser) weights made it and is rebuilt when they change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import Batch, TTSDataset, collate
from ..data.dataset import model_vocab
from ..utils.io import load_tensors, save_tensors
from .paths import align_batch, paths_from_durations


def weights_digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class AlignmentTable:
    """Per-utterance token durations (aligner frames, 2 mel frames each)."""

    def __init__(self, durations: dict[str, np.ndarray]) -> None:
        self.durations = durations

    def __call__(self, batch: Batch) -> torch.Tensor:
        """The batch's hard alignments ``[B, tokens, frames/2]`` rebuilt from the durations."""
        return paths_from_durations(batch, [self.durations[uid] for uid in batch.ids])

    @classmethod
    def build(
        cls,
        model: nn.Module,
        items: Sequence,
        path: str | Path,
        source: str = "attention",
        batch_size: int = 8,
        progress: bool = True,
        recognizer: nn.Module | None = None,
    ) -> AlignmentTable:
        from ..utils.progress import progress_bar as tqdm

        path = Path(path)
        if source == "recognizer" and recognizer is None:
            raise ValueError("alignment source 'recognizer' needs a recogniser model")
        digest = weights_digest(recognizer if source == "recognizer" else model.text_aligner)
        settings = {"aligner": digest, "source": source, "format": 1}
        if path.exists():
            tensors, meta = load_tensors(path)
            if meta.get("settings") == settings and set(tensors) >= {it.id for it in items}:
                return cls({k: v.numpy() for k, v in tensors.items()})
        dataset = TTSDataset(list(items), multispeaker=False, vocab=model_vocab(model))
        order = sorted(range(len(items)), key=lambda i: dataset.frame_lengths[i])
        was = model.text_aligner.training
        model.text_aligner.eval()
        if recognizer is not None:
            recognizer.eval().to(next(model.parameters()).device)
        durations: dict[str, np.ndarray] = {}
        try:
            chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            for chunk in tqdm(chunks, desc="aligning", unit="batch", disable=not progress):
                batch = collate([dataset[i] for i in chunk]).to(next(model.parameters()).device)
                hard = align_batch(model, batch, source, recognizer)
                for b, uid in enumerate(batch.ids):
                    n = int(batch.token_lengths[b])
                    durations[uid] = hard[b, :n].sum(-1).cpu().numpy().astype(np.int32)
        finally:
            model.text_aligner.train(was)
        save_tensors(
            path, {k: torch.from_numpy(v) for k, v in durations.items()}, metadata={"settings": settings}
        )
        return cls(durations)
