"""F0 targets for the prosody predictor: the JDC pitch extractor, or a DSP tracker when JDC is absent.

JDC is what the official recipe uses. Without its weights, ``pyin`` (librosa's probabilistic YIN) gives
F0 in Hz at the same 300-sample hop; unvoiced frames are 0, as in JDC's output. The choice is an explicit
option of the trainer, never a silent fallback.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)

F0_SOURCES = ("jdc", "pyin")
HOP = 300


__all__ = ["F0_SOURCES", "HOP", "PyinTracker", "jdc_f0"]


def jdc_f0(pitch_extractor: torch.nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """JDC F0 ``[B, T]`` of normalised log-mels ``[B, 80, T]`` (no gradient, module mode untouched)."""
    with torch.no_grad():
        f0 = pitch_extractor(mel.unsqueeze(1))[0]
    return f0.reshape(mel.shape[0], -1)


class PyinTracker:
    """pYIN F0 per utterance, computed once on the full padded waveform and then cropped like the mel."""

    def __init__(self, sample_rate: int = 24000, fmin: float = 50.0, fmax: float = 600.0) -> None:
        self.sample_rate = sample_rate
        self.fmin = fmin
        self.fmax = fmax
        self._cache: dict[str, np.ndarray] = {}

    def track(self, key: str, wave: np.ndarray) -> np.ndarray:
        if key not in self._cache:
            import librosa

            f0, voiced, _ = librosa.pyin(
                wave.astype(np.float32),
                fmin=self.fmin,
                fmax=self.fmax,
                sr=self.sample_rate,
                frame_length=2048,
                hop_length=HOP,
                center=True,
            )
            self._cache[key] = np.where(voiced & np.isfinite(f0), f0, 0.0).astype(np.float32)
        return self._cache[key]

    def crop(self, key: str, wave: np.ndarray, start_frame: int, frames: int) -> np.ndarray:
        f0 = self.track(key, wave)
        out = np.zeros(frames, dtype=np.float32)
        piece = f0[start_frame : start_frame + frames]
        out[: len(piece)] = piece
        return out
