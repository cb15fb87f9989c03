"""Monotonic alignment search (MAS): the best monotonic token-to-frame path through an attention map.

StyleTTS 2 turns the text aligner's soft attention into a hard alignment with MAS; its column sums are
the duration targets. Each frame is assigned exactly one token, tokens advance by at most one per frame
and every token gets at least one frame. An utterance with fewer frames than tokens (a wrong transcript,
very fast speech) cannot satisfy that; it gets a proportional alignment and a warning instead of
stopping a long job.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
import torch

log = logging.getLogger(__name__)

_NEG = -1e9


@numba.njit(cache=True)
def _best_path(value: np.ndarray, n_tokens: int, n_frames: int) -> np.ndarray:
    """Dynamic programme over ``value[token, frame]`` (the valid top-left block)."""
    score = value.copy()
    path = np.zeros(value.shape, dtype=np.int32)
    for y in range(n_frames):
        for x in range(max(0, n_tokens + y - n_frames), min(n_tokens, y + 1)):
            stay = _NEG if x == y else score[x, y - 1]
            if x == 0:
                advance = 0.0 if y == 0 else _NEG
            else:
                advance = score[x - 1, y - 1]
            score[x, y] += max(stay, advance)
    x = n_tokens - 1
    for y in range(n_frames - 1, -1, -1):
        path[x, y] = 1
        if x != 0 and (x == y or score[x, y - 1] < score[x - 1, y - 1]):
            x -= 1
    return path


def monotonic_alignment(
    attn: torch.Tensor, token_lengths: torch.Tensor, frame_lengths: torch.Tensor
) -> torch.Tensor:
    """Hard 0/1 alignments ``[B, tokens, frames]`` (dtype of ``attn``) maximising the summed attention."""
    values = attn.detach().to(torch.float32).cpu().numpy()
    out = np.zeros(values.shape, dtype=np.float32)
    for b in range(values.shape[0]):
        t, f = int(token_lengths[b]), int(frame_lengths[b])
        if t == 0 or f == 0:
            continue
        if f < t:
            log.warning("utterance %d: %d frames for %d tokens; using a proportional alignment", b, f, t)
            out[b, np.minimum((np.arange(f) * t) // f, t - 1), np.arange(f)] = 1.0
            continue
        out[b, :t, :f] = _best_path(np.ascontiguousarray(values[b, :t, :f]), t, f)
    return torch.from_numpy(out).to(device=attn.device, dtype=attn.dtype)


def length_mask_2d(
    token_lengths: torch.Tensor, frame_lengths: torch.Tensor, tokens: int, frames: int
) -> torch.Tensor:
    """Bool ``[B, tokens, frames]``: True inside each utterance's valid token × frame block."""
    t = torch.arange(tokens, device=token_lengths.device)[None, :, None] < token_lengths[:, None, None]
    f = torch.arange(frames, device=frame_lengths.device)[None, None, :] < frame_lengths[:, None, None]
    return t & f
