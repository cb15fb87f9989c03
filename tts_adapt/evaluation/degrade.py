"""Controlled degradations for sanity-checking metrics: a metric that does not move with them is broken.

Both are seeded, so a check that "PER rises under noise" is reproducible.
"""

from __future__ import annotations

import numpy as np


def add_noise(wave: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` relative to the signal's mean power."""
    wave = np.asarray(wave, dtype=np.float32)
    power = float(np.mean(wave.astype(np.float64) ** 2))
    if power == 0.0:
        raise ValueError("cannot set an SNR on a silent signal")
    noise = np.random.default_rng(seed).standard_normal(wave.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def garble(wave: np.ndarray, sr: int, segment_ms: float = 80.0, seed: int = 0) -> np.ndarray:
    """Cut into ``segment_ms`` pieces and shuffle them: same spectrum statistics, destroyed content."""
    wave = np.asarray(wave, dtype=np.float32)
    seg = max(1, int(sr * segment_ms / 1000))
    n = len(wave) // seg
    if n < 2:
        raise ValueError(f"audio too short to garble into {segment_ms} ms segments")
    pieces = wave[: n * seg].reshape(n, seg)
    order = np.random.default_rng(seed).permutation(n)
    return np.concatenate([pieces[order].reshape(-1), wave[n * seg :]]).astype(np.float32)
