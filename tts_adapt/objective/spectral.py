"""Multi-resolution mel spectral-convergence loss (StyleTTS 2's "mel" reconstruction term).

Each resolution computes a 128-band 24 kHz mel, normalises it like the model's front end
(``(log(1e-5 + mel) + 4) / 4``) and takes ``||Y - X||_1 / ||Y||_1``. The official code takes the norms over
the whole batch; we take them per utterance, which makes the loss a mean over utterances (so it is the
same whether a batch is split across processes or not).
"""

from __future__ import annotations

import warnings

import torch
import torchaudio
from torch import nn

RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


__all__ = ["MultiResolutionLogSTFTLoss", "MultiResolutionMelLoss", "RESOLUTIONS"]


class MultiResolutionMelLoss(nn.Module):
    def __init__(self, sample_rate: int = 24000, resolutions=RESOLUTIONS) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # The official loss keeps torchaudio's 128 bands at every resolution; at n_fft 512 some bands
            # fall between FFT bins and are all zero. Both mels get the same constant there (nothing in
            # the difference, no gradient), exactly as in the official loss: torchaudio's warning is noise.
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
            self.mels = nn.ModuleList(
                torchaudio.transforms.MelSpectrogram(
                    sample_rate=sample_rate,
                    n_fft=n_fft,
                    hop_length=hop,
                    win_length=win,
                    window_fn=torch.hann_window,
                )
                for n_fft, hop, win in resolutions
            )

    def forward(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, 1, S]`` or ``[B, S]`` -> per-utterance loss ``[B]``."""
        x = generated.reshape(generated.shape[0], -1)
        y = real.reshape(real.shape[0], -1)
        total = x.new_zeros(x.shape[0])
        for mel in self.mels:
            mel = mel.to(x.dtype)
            xm = (torch.log(1e-5 + mel(x)) + 4) / 4
            ym = (torch.log(1e-5 + mel(y)) + 4) / 4
            total = total + (ym - xm).abs().flatten(1).sum(1) / ym.abs().flatten(1).sum(1)
        return total / len(self.mels)


class MultiResolutionLogSTFTLoss(nn.Module):
    """Mean absolute difference of log linear-frequency STFT magnitudes, per utterance, at the mel
    loss's resolutions: ``mean |log(1e-5 + |X|) - log(1e-5 + |Y|)|``.

    Not an official term (``lambda_stft``, default 0). Above ~1.5 kHz a mel band is wider than the
    spacing of a voice's harmonics, so the mel loss cannot tell harmonics from noise of the same
    power; a linear-frequency STFT at 1024-2048 points resolves them. The harmonic decoder needs that
    to keep its upper harmonics instead of replacing them by noise."""

    def __init__(self, resolutions=RESOLUTIONS) -> None:
        super().__init__()
        self.resolutions = tuple(resolutions)
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def forward(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, 1, S]`` or ``[B, S]`` -> per-utterance loss ``[B]``."""
        x = generated.reshape(generated.shape[0], -1)
        y = real.reshape(real.shape[0], -1)
        total = x.new_zeros(x.shape[0])
        for i, (n_fft, hop, win) in enumerate(self.resolutions):
            window = getattr(self, f"window{i}").to(device=x.device, dtype=torch.float32)
            mags = [
                torch.stft(w.float(), n_fft, hop, win, window=window, return_complex=True).abs()
                for w in (x, y)
            ]
            diff = torch.log(1e-5 + mags[0]) - torch.log(1e-5 + mags[1])
            total = total + diff.abs().flatten(1).mean(1).to(total.dtype)
        return total / len(self.resolutions)
