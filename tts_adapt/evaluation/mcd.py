"""Mel-cepstral distortion with dynamic time warping (MCD-DTW) against a ground-truth recording.

Definition used here (values are comparable only between runs of this implementation; published MCDs
use SPTK mel-cepstra and differ in scale by a few dB):

* both signals at 22.05 kHz, leading/trailing silence trimmed (``top_db=30``);
* STFT 1024 / hop 256 / Hann, 80 mel bands up to 8 kHz, natural-log mel *amplitude*;
* mel-cepstrum = cosine transform of that log spectrum scaled as a cepstrum,
  ``c_k = (1/M) sum_m log|X_m| cos(pi k (m + 1/2) / M)``, so that ``log|X| ~ c_0 + 2 sum_k c_k cos(.)`` as
  in SPTK's convention; coefficients ``c1..c24`` (``c0``, the frame energy, is excluded so loudness does
  not count);
* DTW (Euclidean cost) aligns the two cepstrogram sequences; frames of silence inside utterances are
  kept, as in the common MCD-DTW recipes;
* ``MCD = (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)`` averaged over the warping path, in dB.
"""

from __future__ import annotations

import math

import numpy as np

from .audio_io import AudioInput, load_wave

MCD_SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
N_MELS = 80
N_CEPS = 24
_K = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstrum(wave: np.ndarray, sr: int = MCD_SAMPLE_RATE, trim_db: float | None = 30.0) -> np.ndarray:
    """``[frames, N_CEPS]`` mel-cepstra ``c1..c24`` (see module docstring)."""
    import librosa
    from scipy.fft import dct

    if trim_db is not None and wave.size:
        wave, _ = librosa.effects.trim(wave, top_db=trim_db)
    if wave.size < N_FFT:
        raise ValueError(f"audio too short for MCD ({wave.size} samples after trimming, need >= {N_FFT})")
    mel = librosa.feature.melspectrogram(
        y=wave, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmin=0.0, fmax=8000.0, power=1.0
    )
    log_amp = np.log(np.maximum(mel, 1e-5))
    ceps = dct(log_amp, type=2, axis=0) / (2.0 * N_MELS)  # scipy's unnormalised DCT-II is 2 * sum(...)
    return ceps[1 : N_CEPS + 1].T.astype(np.float64)


def mcd_from_cepstra(ref: np.ndarray, hyp: np.ndarray) -> dict:
    """``{"mcd": dB, "frames": path length, "ref_frames", "hyp_frames"}`` after DTW alignment."""
    import librosa

    cost = np.sqrt(((ref[:, None, :] - hyp[None, :, :]) ** 2).sum(-1))  # [R, H] Euclidean frame distances
    _, path = librosa.sequence.dtw(C=cost, backtrack=True)
    dist = cost[path[:, 0], path[:, 1]]
    return {
        "mcd": float(_K * dist.mean()),
        "frames": int(len(path)),
        "ref_frames": int(len(ref)),
        "hyp_frames": int(len(hyp)),
    }


def mcd_dtw(reference: AudioInput, hypothesis: AudioInput) -> float:
    """MCD-DTW in dB between a ground-truth recording and a synthesised one of the same text."""
    ref = mel_cepstrum(load_wave(reference, MCD_SAMPLE_RATE))
    hyp = mel_cepstrum(load_wave(hypothesis, MCD_SAMPLE_RATE))
    return mcd_from_cepstra(ref, hyp)["mcd"]
