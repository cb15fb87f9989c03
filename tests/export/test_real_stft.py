"""The export's real-valued STFT pair against torch's FFT-based ``stft``/``istft`` (the reference)."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.export.real_stft import RealISTFT
from tts_adapt.models.styletts2.istftnet import ISTFT


@pytest.mark.parametrize(("n_fft", "hop"), [(60, 15), (20, 5), (16, 4)])
def test_analysis_matches_fft(n_fft, hop):
    ref = ISTFT(n_fft, hop, n_fft)
    real = RealISTFT(n_fft, hop, ref.window)
    x = torch.randn(2, 40 * hop + 7, generator=torch.Generator().manual_seed(0))
    spec = torch.stft(x, n_fft, hop, n_fft, window=ref.window, return_complex=True)
    mag, phase = real.transform(x)
    assert mag.shape == spec.shape
    assert torch.allclose(mag, spec.abs(), atol=1e-5)
    # compare angles as unit vectors where the bin is not near zero (there the angle is rounding noise)
    big = spec.abs() > 1e-3
    got = torch.polar(torch.ones_like(phase), phase)
    assert (got - spec / spec.abs())[big].abs().max() < 1e-4


def test_dc_and_nyquist_angles_are_zero_or_pi():
    """Their imaginary part is exactly +0 (as from an FFT), never a rounding residue: angle 0 or +pi."""
    ref = ISTFT(60, 15, 60)
    _, phase = RealISTFT(60, 15, ref.window).transform(torch.randn(3, 900))
    edges = phase[:, [0, -1], :]
    assert bool(((edges == 0) | (edges == torch.pi)).all())


@pytest.mark.parametrize(("n_fft", "hop"), [(60, 15), (20, 5)])
def test_synthesis_matches_istft(n_fft, hop):
    ref = ISTFT(n_fft, hop, n_fft)
    real = RealISTFT(n_fft, hop, ref.window)
    g = torch.Generator().manual_seed(1)
    mag = torch.rand(2, n_fft // 2 + 1, 33, generator=g)
    phase = 3 * torch.randn(2, n_fft // 2 + 1, 33, generator=g)
    want = ref.inverse(mag, phase)
    got = real.inverse(mag, phase)
    assert got.shape == want.shape == (2, 1, hop * 32)
    assert (got - want).abs().max() < 1e-5


def test_odd_sizes_are_refused():
    with pytest.raises(ValueError, match="even n_fft"):
        RealISTFT(15, 5, torch.hann_window(15))
