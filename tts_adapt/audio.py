"""Audio front end: loading, trimming and the exact StyleTTS 2 log-mel.

The official mel is ``torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=2048, win_length=1200,
hop_length=300)`` *without* a sample rate, so its filterbank is torchaudio's 16 kHz one (HTK scale,
0-8000 Hz, no area normalisation) laid over the 1025 bins of 24 kHz audio. Every pre-trained weight
expects that quirk, so we reproduce it rather than "fix" it.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

SAMPLE_RATE = 24000
N_FFT = 2048
WIN_LENGTH = 1200
HOP_LENGTH = 300
N_MELS = 80
LOG_MEL_MEAN = -4.0
LOG_MEL_STD = 4.0
LOG_EPS = 1e-5
# The implicit torchaudio default the official code relies on.
FILTERBANK_SAMPLE_RATE = 16000


@functools.lru_cache(maxsize=8)
def _filterbank(dtype: torch.dtype, device: str) -> torch.Tensor:
    import torchaudio.functional as AF

    fb = AF.melscale_fbanks(
        N_FFT // 2 + 1,
        0.0,
        FILTERBANK_SAMPLE_RATE / 2,
        N_MELS,
        FILTERBANK_SAMPLE_RATE,
        norm=None,
        mel_scale="htk",
    )
    return fb.to(dtype=dtype, device=device)  # [1025, 80]


@functools.lru_cache(maxsize=8)
def _window(dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, dtype=dtype, device=device)


def mel_spectrogram(wave: torch.Tensor) -> torch.Tensor:
    """Power mel ``[..., 80, 1 + n // 300]`` of a waveform ``[..., n]`` (centre, reflect padding)."""
    dev = str(wave.device)
    spec = torch.stft(
        wave.reshape(-1, wave.shape[-1]),
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=_window(wave.dtype, dev),
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    power = spec.abs().pow(2.0)  # [B, 1025, T]
    mel = torch.matmul(power.transpose(-1, -2), _filterbank(wave.dtype, dev)).transpose(-1, -2)
    return mel.reshape(*wave.shape[:-1], N_MELS, mel.shape[-1])


def log_mel(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The official ``preprocess``: normalised log-mel; a 1-D wave gives ``[1, 80, T]``."""
    if isinstance(wave, np.ndarray):
        wave = torch.from_numpy(np.ascontiguousarray(wave)).float()
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    return (torch.log(LOG_EPS + mel_spectrogram(wave)) - LOG_MEL_MEAN) / LOG_MEL_STD


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 at ``sr`` (resampled at load, as ``librosa.load`` does in the official code)."""
    import librosa

    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        wave, _ = librosa.load(str(path), sr=sr, mono=True)
    except Exception as e:
        reason = str(e).strip() or type(e).__name__  # audioread's NoBackendError has no message
        raise ValueError(f"could not read audio file {path}: {reason}") from e
    return wave.astype(np.float32, copy=False)


def trim_silence(wave: np.ndarray, top_db: float = 30.0) -> np.ndarray:
    """``librosa.effects.trim(top_db=30)`` with librosa's defaults, as the reference-style code uses."""
    import librosa

    trimmed, _ = librosa.effects.trim(wave, top_db=top_db)
    return trimmed


def reference_mel(
    reference: str | os.PathLike | np.ndarray | torch.Tensor, sr: int = SAMPLE_RATE
) -> torch.Tensor:
    """Reference audio -> ``[1, 80, T]`` log-mel the way ``compute_style`` prepares it (load, trim)."""
    if isinstance(reference, (str, os.PathLike)):
        wave = load_audio(reference, sr=sr)
    elif isinstance(reference, torch.Tensor):
        wave = reference.detach().cpu().float().numpy().reshape(-1)
    else:
        wave = np.asarray(reference, dtype=np.float32).reshape(-1)
    if wave.size == 0:
        raise ValueError("reference audio is empty")
    wave = trim_silence(wave)
    return log_mel(wave)


def log_energy(mel: torch.Tensor, mean: float = LOG_MEL_MEAN, std: float = LOG_MEL_STD) -> torch.Tensor:
    """StyleTTS 2's energy target: ``log ||mel||_2`` per frame of a normalised log-mel ``[B, 80, T]``."""
    return torch.log(torch.exp(mel * std + mean).norm(dim=1))
