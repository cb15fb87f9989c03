"""Monotonic paths through an utterance's tokens: from a CTC phoneme recogniser's posteriors, or from
a model's own text aligner (its attention or its CTC head).

A text aligner trained from nothing on a small corpus aligns poorly for a long time (on the shipped
model's corpus its paths were no better for the decoder than a uniform split of each utterance, see
docs/history.md), while a CTC phoneme recogniser trained on the same audio (``tts-adapt train-per``)
learns fast. Source ``"recognizer"`` takes the paths from such a recogniser, scored per token kind
(:func:`recognizer_scores`). A model whose decoder learned on those paths names its recogniser in its
config (``alignment_recognizer``), so fine-tuning, curvature and the held-out loss align with it too
(:func:`recognizer_paths_from_config`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data import Batch
from ..models.styletts2.alignment import length_mask_2d, monotonic_alignment
from ..text.tokenizer import length_to_mask
from .recognizer import STRESS_MARKS, load_recognizer

log = logging.getLogger(__name__)


@functools.cache
def _token_kinds() -> torch.Tensor:
    """Per symbol id: 0 phone, 1 silence (pad, punctuation), 2 word space, 3 stress mark."""
    from ..text.symbols import PUNCTUATION, SYMBOLS

    return torch.tensor(
        [
            2 if s == " " else 1 if (i == 0 or s in PUNCTUATION) else 3 if s in STRESS_MARKS else 0
            for i, s in enumerate(SYMBOLS)
        ]
    )


STRESS_SCORE = -30.0  # a stress mark has no sound of its own: one frame, taken from its vowel
SPACE_PENALTY = 1.0  # a word boundary takes a pause only where the recogniser hears silence clearly


def recognizer_scores(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[B, tokens, frames]`` scores for the monotonic search from CTC logits ``[B, frames, V]``.

    A CTC recogniser is confident only at one spike per phone and says "blank" elsewhere, so a phone
    is scored by its posterior among the non-blank symbols, ``log p_k - log(1 - p_blank)``, which
    stays high across the phone. Pads and punctuation are the silences (``log p_blank``); a word space is
    a silence with a penalty (most word boundaries have no pause); stress marks get one frame.
    """
    logp = logits.float().log_softmax(-1)
    log_blank = logp[..., 0]
    non_blank = logp - torch.log1p(-log_blank.exp().clamp(max=1 - 1e-6)).unsqueeze(-1)
    scores = torch.gather(non_blank, 2, tokens.unsqueeze(1).expand(-1, logp.shape[1], -1)).transpose(1, 2)
    kind = _token_kinds().to(tokens.device)
    k = kind[tokens.clamp(max=len(kind) - 1)].unsqueeze(-1).expand_as(scores)
    blank = log_blank.unsqueeze(1).expand_as(scores)
    scores = torch.where(k == 1, blank, scores)
    scores = torch.where(k == 2, blank - SPACE_PENALTY, scores)
    return torch.where(k == 3, torch.full_like(scores, STRESS_SCORE), scores)


def token_map_for(model: nn.Module) -> torch.Tensor | None:
    """Model token id -> recogniser (StyleTTS 2 symbol table) id, for a model with a vocabulary of its
    own (Kokoro): both number the same IPA characters, so a path over one sequence is a path over the
    other. Symbols the table lacks (none occur in espeak-ng IPA) count as silences."""
    from ..models.styletts2.config import text_settings
    from ..text.symbols import SYMBOL_TO_ID

    vocab = text_settings(getattr(model, "config", None) or {})["vocab"]
    if vocab is None:
        return None
    table = torch.zeros(max(vocab.values()) + 1, dtype=torch.long)
    for symbol, i in vocab.items():
        table[i] = SYMBOL_TO_ID.get(symbol, 0)
    return table


def aligner_padding(mel_lengths: torch.Tensor, width: int) -> torch.Tensor:
    """True at padded aligner frames (the aligner halves the mel rate)."""
    return length_to_mask(mel_lengths // 2, width // 2)


def ctc_alignment_scores(ctc_logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[B, tokens, frames]`` posterior of each token at each frame, a monotonic-search input that
    does not depend on the attention decoder having learned to attend."""
    post = ctc_logits.detach().softmax(-1)  # [B, T', V]
    return torch.gather(post, 2, tokens.unsqueeze(1).expand(-1, post.shape[1], -1)).transpose(1, 2)


def paths_from_durations(batch: Batch, durations: Sequence[np.ndarray]) -> torch.Tensor:
    """The batch's hard alignments ``[B, tokens, frames/2]`` rebuilt from each utterance's token
    durations (aligner frames)."""
    width = batch.mels.shape[-1] // 2
    out = torch.zeros(len(batch), batch.tokens.shape[1], width, device=batch.mels.device)
    for b, d in enumerate(durations):
        ends = np.cumsum(d)
        starts = ends - d
        for t, (s0, e0) in enumerate(zip(starts, ends)):
            out[b, t, int(s0) : int(e0)] = 1.0
    return out


def align_batch(
    model: nn.Module,
    batch: Batch,
    source: str = "attention",
    recognizer: nn.Module | None = None,
    token_map: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hard monotonic alignments ``[B, tokens, frames/2]`` of a batch with the frozen aligner (or the
    recogniser, for ``source="recognizer"``; ``token_map`` translates the model's ids to its table)."""
    frames = batch.mel_lengths // 2
    with torch.no_grad():
        if source == "recognizer":
            if recognizer is None:
                raise ValueError("alignment source 'recognizer' needs a recogniser model")
            # one utterance at a time: the recogniser's group norms see the whole input, so padding
            # would make an utterance's path depend on the batch it was drawn with
            scores = torch.full(
                (len(batch), batch.tokens.shape[1], batch.mels.shape[-1] // 2), -1e4, device=batch.mels.device
            )
            tokens = batch.tokens if token_map is None else token_map.to(batch.tokens.device)[batch.tokens]
            for b in range(len(batch)):
                logits = recognizer(batch.mels[b : b + 1, :, : int(batch.mel_lengths[b])])
                n = min(int(frames[b]), logits.shape[1])
                scores[b, :, :n] = recognizer_scores(logits, tokens[b : b + 1])[0, :, :n]
            return monotonic_alignment(scores, batch.token_lengths, frames)
        ctc, _, attn = model.text_aligner(
            batch.mels, aligner_padding(batch.mel_lengths, batch.mels.shape[-1]), batch.tokens
        )
        scores = attn[:, 1:, :] if source == "attention" else ctc_alignment_scores(ctc, batch.tokens)
        valid = length_mask_2d(batch.token_lengths, frames, scores.shape[1], scores.shape[2])
        return monotonic_alignment(scores * valid, batch.token_lengths, frames)


class RecognizerPaths:
    """Monotonic paths from a CTC phoneme recogniser for whatever batch comes, computed once per
    utterance (id and length): the fine-tuning objective's alignments for a base model whose decoder
    and duration predictor were pre-trained on such paths rather than on its text aligner's."""

    def __init__(self, model: nn.Module, recognizer: nn.Module) -> None:
        self.model = model
        self.recognizer = recognizer.eval()
        self.token_map = token_map_for(model)
        self.durations: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, batch: Batch) -> torch.Tensor:
        keys = [(uid, int(n)) for uid, n in zip(batch.ids, batch.mel_lengths)]
        if any(k not in self.durations for k in keys):
            self.recognizer.to(batch.mels.device)
            hard = align_batch(self.model, batch, "recognizer", self.recognizer, self.token_map)
            for b, k in enumerate(keys):
                n = int(batch.token_lengths[b])
                self.durations[k] = hard[b, :n].sum(-1).cpu().numpy().astype(np.int32)
        return paths_from_durations(batch, [self.durations[k] for k in keys])


CONFIG_KEY = "alignment_recognizer"


def recognizer_paths_from_config(model: nn.Module) -> RecognizerPaths | None:
    """The recogniser a model's config names under ``alignment_recognizer`` (a path relative to the
    config's folder), or ``None`` when it names none (the official checkpoints: their aligner aligns)."""
    from ..models.styletts2.config import resolve_path

    cfg = getattr(model, "config", None) or {}
    name = cfg.get(CONFIG_KEY)
    if not name:
        return None
    path = resolve_path(name, cfg)
    if path is None:
        raise FileNotFoundError(
            f"config {CONFIG_KEY}: {name} not found (relative to the config's folder "
            f"{cfg.get('_config_dir')}): it aligns text and audio for this model, which ships no text aligner"
        )
    log.info("alignments: the recogniser's paths (%s), named by the model's config (%s)", path, CONFIG_KEY)
    return RecognizerPaths(model, load_recognizer(path))
