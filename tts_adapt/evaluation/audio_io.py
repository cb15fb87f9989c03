"""Audio input for evaluators: a path or an in-memory ``(wave, sample_rate)`` pair, at the rate a model wants.

Every evaluator resamples to its own model's rate, so they all accept the same inputs. Waves are mono
float32; a content hash of the decoded samples keys the embedding caches, so two copies of one file or
one file and its array hit the same cache entry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

AudioInput = str | os.PathLike | tuple[np.ndarray, int]


def load_wave(audio: AudioInput, sr: int) -> np.ndarray:
    """Mono float32 samples of ``audio`` at ``sr`` Hz.

    ``audio`` is a file path or a ``(wave, sample_rate)`` tuple; a bare array is refused because its rate
    would be a guess.
    """
    if isinstance(audio, (str, os.PathLike)):
        from ..audio import load_audio

        return load_audio(audio, sr=sr)
    if isinstance(audio, np.ndarray):
        raise ValueError("a bare numpy array has no sample rate: pass (wave, sample_rate) or a file path")
    if not (isinstance(audio, tuple) and len(audio) == 2):
        raise ValueError(f"expected an audio path or a (wave, sample_rate) tuple, got {type(audio).__name__}")
    wave, src_sr = audio
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:  # [channels, n] or [n, channels]: average the short axis
        wave = wave.mean(axis=0 if wave.shape[0] < wave.shape[1] else 1)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D (mono) waveform, got shape {wave.shape}")
    src_sr = int(src_sr)
    if src_sr <= 0:
        raise ValueError(f"sample rate must be positive, got {src_sr}")
    if src_sr != sr:
        import librosa

        wave = librosa.resample(wave, orig_sr=src_sr, target_sr=sr)
    return np.ascontiguousarray(wave, dtype=np.float32)


def describe(audio: AudioInput) -> str:
    """A short name for error messages and logs."""
    if isinstance(audio, (str, os.PathLike)):
        return str(audio)
    return f"<array, {len(audio[0])} samples @ {audio[1]} Hz>"


def wave_hash(wave: np.ndarray, sr: int) -> str:
    """SHA-1 of the float32 samples and their rate: the cache key of one decoded waveform."""
    h = hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes())
    h.update(str(int(sr)).encode())
    return h.hexdigest()


def write_wave(path: str | os.PathLike, wave: np.ndarray, sr: int) -> None:
    """16-bit PCM WAV, written atomically (a half-written file must never look like a finished one)."""
    import soundfile as sf

    from ..utils.io import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(
            str(tmp),
            np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0),
            int(sr),
            subtype="PCM_16",
            format="WAV",
        )


def duration_seconds(audio: AudioInput) -> float:
    if isinstance(audio, (str, os.PathLike)):
        import soundfile as sf

        info = sf.info(str(audio))
        return info.frames / float(info.samplerate)
    return len(audio[0]) / float(audio[1])
