"""Token durations from the trained aligner, computed once per utterance and cached.

While the aligner is frozen (the first stage before TMA, and the second stage), its monotonic alignment
of an utterance is a fixed function of the mel and the tokens, yet the official loop recomputes it
every step: a CNN, a step-by-step attention decoder and a dynamic programme per utterance. Computing it
once turns that cost into a table lookup, which is most of what makes pre-training affordable on a
CPU. The table records which aligner weights made it and is rebuilt when they change.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import Batch, TTSDataset, collate
from ..models.styletts2.alignment import length_mask_2d, monotonic_alignment
from ..utils.io import load_tensors, save_tensors

log = logging.getLogger(__name__)


def weights_digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def align_batch(model: nn.Module, batch: Batch, source: str = "attention") -> torch.Tensor:
    """Hard monotonic alignments ``[B, tokens, frames/2]`` of a batch with the frozen aligner."""
    from ..objective.first_stage import ctc_alignment_scores, frame_mask

    frames = batch.mel_lengths // 2
    with torch.no_grad():
        ctc, _, attn = model.text_aligner(
            batch.mels, frame_mask(batch.mel_lengths, batch.mels.shape[-1]), batch.tokens
        )
        scores = attn[:, 1:, :] if source == "attention" else ctc_alignment_scores(ctc, batch.tokens)
        valid = length_mask_2d(batch.token_lengths, frames, scores.shape[1], scores.shape[2])
        return monotonic_alignment(scores * valid, batch.token_lengths, frames)


class AlignmentTable:
    """Per-utterance token durations (aligner frames, 2 mel frames each)."""

    def __init__(self, durations: dict[str, np.ndarray]) -> None:
        self.durations = durations

    def __call__(self, batch: Batch) -> torch.Tensor:
        """The batch's hard alignments ``[B, tokens, frames/2]`` rebuilt from the durations."""
        width = batch.mels.shape[-1] // 2
        out = torch.zeros(len(batch), batch.tokens.shape[1], width, device=batch.mels.device)
        for b, uid in enumerate(batch.ids):
            d = self.durations[uid]
            ends = np.cumsum(d)
            starts = ends - d
            for t, (s0, e0) in enumerate(zip(starts, ends)):
                out[b, t, int(s0) : int(e0)] = 1.0
        return out

    @classmethod
    def build(
        cls,
        model: nn.Module,
        items: Sequence,
        path: str | Path,
        source: str = "attention",
        batch_size: int = 8,
        progress: bool = True,
    ) -> AlignmentTable:
        from tqdm.auto import tqdm

        path = Path(path)
        digest = weights_digest(model.text_aligner)
        settings = {"aligner": digest, "source": source, "format": 1}
        if path.exists():
            tensors, meta = load_tensors(path)
            if meta.get("settings") == settings and set(tensors) >= {it.id for it in items}:
                return cls({k: v.numpy() for k, v in tensors.items()})
        dataset = TTSDataset(list(items), multispeaker=False)
        order = sorted(range(len(items)), key=lambda i: dataset.frame_lengths[i])
        was = model.text_aligner.training
        model.text_aligner.eval()
        durations: dict[str, np.ndarray] = {}
        try:
            chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            for chunk in tqdm(chunks, desc="aligning", unit="batch", disable=not progress):
                batch = collate([dataset[i] for i in chunk]).to(next(model.parameters()).device)
                hard = align_batch(model, batch, source)
                for b, uid in enumerate(batch.ids):
                    n = int(batch.token_lengths[b])
                    durations[uid] = hard[b, :n].sum(-1).cpu().numpy().astype(np.int32)
        finally:
            model.text_aligner.train(was)
        save_tensors(
            path, {k: torch.from_numpy(v) for k, v in durations.items()}, metadata={"settings": settings}
        )
        return cls(durations)
