"""The log linear-STFT term: it tells a voice's upper harmonics from noise, where the mel loss cannot."""

from __future__ import annotations

import math

import torch

from tts_adapt.objective.spectral import MultiResolutionLogSTFTLoss, MultiResolutionMelLoss

SR = 24000


def band_noise(seed: int, samples: int, low: float, high: float) -> torch.Tensor:
    """White noise band-limited to [low, high] Hz by zeroing FFT bins."""
    g = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft(torch.randn(samples, generator=g, dtype=torch.float64))
    freqs = torch.fft.rfftfreq(samples, 1 / SR)
    spec[(freqs < low) | (freqs > high)] = 0
    return torch.fft.irfft(spec, samples)


def test_identical_waves_score_zero_and_the_gradient_flows():
    loss = MultiResolutionLogSTFTLoss()
    y = band_noise(0, 12000, 0, SR / 2).float().reshape(1, 1, -1)
    assert float(loss(y, y)[0]) == 0.0
    x = (0.5 * y).requires_grad_()
    value = loss(x, y)
    value.sum().backward()
    # a uniform gain of 1/2 is a log difference of log 2 in every bin not at the 1e-5 floor
    assert math.isclose(float(value[0]), math.log(2), rel_tol=0.05)
    assert float(x.grad.abs().sum()) > 0


def test_it_separates_harmonics_from_noise_of_the_same_band_power():
    """Harmonics of 170 Hz between 3 and 11 kHz against noise in that band with the same power: the mel
    loss scores them about as far apart as two draws of the noise (its bands there are wider than
    170 Hz), the log-STFT loss half as far again (measured: 0.99 and 1.68 times)."""
    samples = 24000
    t = torch.arange(samples, dtype=torch.float64) / SR
    harmonics = sum(torch.sin(2 * math.pi * k * 170 * t) for k in range(18, 65))
    noise_a, noise_b = band_noise(1, samples, 3060, 10880), band_noise(2, samples, 3060, 10880)
    noise_a *= harmonics.std() / noise_a.std()
    noise_b *= harmonics.std() / noise_b.std()
    h, a, b = (w.float().reshape(1, 1, -1) for w in (harmonics, noise_a, noise_b))
    mel, stft = MultiResolutionMelLoss(), MultiResolutionLogSTFTLoss()
    mel_ratio = float(mel(h, a)[0] / mel(b, a)[0])
    stft_ratio = float(stft(h, a)[0] / stft(b, a)[0])
    assert mel_ratio < 1.1
    assert stft_ratio > 1.5
