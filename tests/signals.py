"""Test signals whose pitch is known by construction."""

from __future__ import annotations

import numpy as np

SR = 24000


def harmonic_tone(f0: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """Five harmonics of ``f0`` with 1/k amplitudes: a voiced sound whose pitch is ``f0``."""
    t = np.arange(int(seconds * sr)) / sr
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)
