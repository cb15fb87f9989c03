"""A real-valued STFT/iSTFT pair for graph export.

ONNX (opset 17) has no complex tensors, so ``torch.stft``/``torch.istft`` with ``return_complex`` cannot
be traced. This module computes the same transforms as the iSTFTNet decoder's :class:`ISTFT` with
convolutions against a windowed DFT basis: analysis is a strided ``conv1d`` after reflect padding
(``center=True``), synthesis a strided ``conv_transpose1d`` (overlap-add) divided by the overlapped
squared window, then trimmed by ``n_fft // 2`` at both ends, which is what ``torch.istft`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SNAP = 1e-5  # |imag| / |real| below which a bin counts as real (float32 DFT residues are ~1e-7)


def _dft_basis(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of 2πkn/N for the one-sided bins k = 0..N/2, shape (N/2+1, N), float64."""
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    n = torch.arange(n_fft, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * k * n / n_fft
    return torch.cos(angle), torch.sin(angle)


def _angle(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """``atan2(imag, real)`` spelled with ops whose export keeps +pi for (real < 0, imag = +0).

    torch.onnx lowers ``atan2`` so that this case gives -pi, which flips the angle the decoder reads in
    every DC/Nyquist bin with a negative real part.
    """
    base = torch.atan(imag / real)
    upper = torch.where(imag >= 0, base + math.pi, base - math.pi)
    angle = torch.where(real < 0, upper, base)
    origin = (real == 0) & (imag == 0)
    return torch.where(origin, torch.zeros_like(angle), angle)


class RealISTFT(nn.Module):
    """Drop-in for :class:`tts_adapt.models.styletts2.istftnet.ISTFT` made of real-valued ops."""

    def __init__(self, n_fft: int, hop_length: int, window: torch.Tensor) -> None:
        super().__init__()
        if n_fft % 2 or window.numel() != n_fft:
            raise ValueError(f"RealISTFT needs an even n_fft equal to the window length, got {n_fft}")
        self.n_fft, self.hop_length = n_fft, hop_length
        w = window.to(torch.float64)
        cos, sin = _dft_basis(n_fft)
        # Analysis: X_k = sum_n x[n] w[n] e^{-2πikn/N}  ->  Re = <x, w cos>, Im = -<x, w sin>. The
        # imaginary parts of DC and Nyquist are exactly +0 (as the FFT gives them), not a rounding
        # residue of either sign: the decoder reads the *angle*, and atan2(±0, negative) is ±π.
        analysis = torch.cat([cos * w, -sin[1:-1] * w])[:, None, :]
        # Synthesis (one-sided inverse DFT, times the window): x[n] = 1/N sum_k c_k (Re_k cos - Im_k sin)
        # with c_0 = c_{N/2} = 1 and c_k = 2 otherwise; the imaginary parts of DC and Nyquist drop out
        # because their sine rows are zero.
        c = torch.full((n_fft // 2 + 1, 1), 2.0, dtype=torch.float64)
        c[0] = c[-1] = 1.0
        synthesis = torch.cat([c * cos, -c * sin]) * w / n_fft
        self.register_buffer("analysis", analysis.float(), persistent=False)
        self.register_buffer("synthesis", synthesis[:, None, :].float(), persistent=False)
        self.register_buffer("window_sq", (w * w).float()[None, None, :], persistent=False)

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitude and phase of ``x`` (batch, samples), each (batch, N/2+1, frames)."""
        pad = self.n_fft // 2
        x = F.pad(x[:, None, :], (pad, pad), mode="reflect")
        spec = F.conv1d(x, self.analysis, stride=self.hop_length)
        bins = self.n_fft // 2 + 1
        real, imag = spec[:, :bins], spec[:, bins:]
        zero = torch.zeros_like(real[:, :1])
        imag = torch.cat([zero, imag, zero], dim=1)
        # Bins that are real in exact arithmetic (every bin of the symmetric, reflect-padded first and
        # last frames) come out of any float32 DFT with an imaginary rounding residue of either sign,
        # and the decoder would read an angle of +pi or -pi by that sign. Snapping such residues to +0
        # makes the angle the same in every runtime (PyTorch, onnxruntime); torch's own FFT still picks
        # a sign of its own, hence the rounding-level difference documented in the export's tests.
        imag = torch.where(imag.abs() <= SNAP * real.abs(), torch.zeros_like(imag), imag)
        return torch.sqrt(real * real + imag * imag), _angle(real, imag)

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Waveform (batch, 1, hop * (frames - 1)) from magnitude and phase."""
        spec = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        wave = F.conv_transpose1d(spec, self.synthesis, stride=self.hop_length)
        ones = torch.ones_like(magnitude[:, :1, :])
        envelope = F.conv_transpose1d(ones, self.window_sq, stride=self.hop_length)
        pad = self.n_fft // 2
        end = wave.shape[-1] - pad
        wave, envelope = wave[..., pad:end], envelope[..., pad:end]
        return wave / torch.where(envelope > 1e-11, envelope, torch.ones_like(envelope))
