"""Tell curvature hooks which frames are padding and which utterance each row belongs to (used by the
objectives in this package; read by :mod:`tts_adapt.curvature.accumulate`).

Inside a model, a layer only sees a tensor; it cannot know that frames past an utterance's length are
padding. The per-utterance loss function can say so by wrapping model calls in :func:`frame_mask`::

    with frame_mask(text_mask_valid):          # [B, T_text], True = real frame
        h = model.bert(tokens, attention_mask=...)

A hooked layer uses the innermost active mask whose shape equals its frame grid (``[B, T]`` for a
Linear on ``[B, T, d]`` input, ``[B, T_out]`` for a Conv1d); layers with no matching mask count every
frame. ``utterances`` maps rows to utterances when a module runs on part of the batch, e.g. once per
utterance in a loop (``frame_mask(utterances=[n])``). Outside curvature estimation the context does
nothing and costs nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

_state = threading.local()


@dataclass(frozen=True)
class FrameContext:
    mask: torch.Tensor | None
    utterances: torch.Tensor | None


def _stack() -> list[FrameContext]:
    if not hasattr(_state, "stack"):
        _state.stack = []
    return _state.stack


@contextlib.contextmanager
def frame_mask(
    mask: torch.Tensor | None = None, utterances: Sequence[int] | torch.Tensor | None = None
) -> Iterator[None]:
    """Declare valid frames (``mask``, bool ``[rows, T]``) and/or row -> utterance indices."""
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dim() < 1:
            raise ValueError("frame_mask: mask must be a tensor [rows, T] (True = real frame)")
        mask = mask.detach().bool()
    utt = None
    if utterances is not None:
        utt = torch.as_tensor(utterances, dtype=torch.long).reshape(-1)
    stack = _stack()
    stack.append(FrameContext(mask, utt))
    try:
        yield
    finally:
        stack.pop()


def lookup(
    frame_shape: tuple[int, ...], device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(mask [rows, T] or None, utterance index per row or None)`` for a layer's frame grid."""
    mask = utt = None
    rows = frame_shape[0] if frame_shape else 1
    for ctx in reversed(_stack()):
        if mask is None and ctx.mask is not None and tuple(ctx.mask.shape) == tuple(frame_shape):
            mask = ctx.mask.reshape(rows, -1).to(device)
        if utt is None and ctx.utterances is not None and ctx.utterances.numel() == rows:
            utt = ctx.utterances.to(device)
    return mask, utt
