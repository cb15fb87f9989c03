"""The harmonic-plus-noise generator: its pitch is F0's by construction, its spectrum the envelope's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.harmonic import (
    NOISE_TAPS,
    HarmonicNoiseGenerator,
    band_filters,
    frames_to_samples,
    harmonic_phases,
)

SR, HOP = 24000, 300


def generator(**kw) -> HarmonicNoiseGenerator:
    g = HarmonicNoiseGenerator(
        style_dim=8,
        resblock_kernel_sizes=[3],
        upsample_rates=[HOP],
        upsample_initial_channel=16,
        resblock_dilation_sizes=[[1, 3]],
        sampling_rate=SR,
        **kw,
    )
    return g.eval()


def fixed_envelope(g: HarmonicNoiseGenerator, envelope, aperiodicity_logits) -> None:
    """Zero the last convolution's weights so that its biases alone give every frame's output."""
    with torch.no_grad():
        g.conv_post.weight_g.zero_()
        g.conv_post.bias[: g.envelope_bins] = torch.as_tensor(envelope, dtype=torch.float32)
        g.conv_post.bias[g.envelope_bins :] = torch.as_tensor(aperiodicity_logits, dtype=torch.float32)


def test_harmonic_phase_is_the_running_sum_of_f0():
    """The phase equals the float64 running sum of the per-sample frequency (F0 linearly
    interpolated between frames, frame t at sample t*hop, held after the last), mod 1,
    over 10 s: no drift. The bound is float32's rounding of the per-sample frequency (5e-8 of the
    2,000 cycles); a sequential float32 running sum (numpy's) misses by 0.07."""
    t = 800
    f0 = torch.linspace(80, 320, t).unsqueeze(0) + 30 * torch.sin(torch.arange(t) / 7.0).unsqueeze(0)
    phase = harmonic_phases(f0, HOP, SR)[0].double().numpy()
    centres = np.arange(t) * HOP
    per_sample = np.interp(np.arange(t * HOP), centres, f0[0].double().numpy())
    expected = np.cumsum(per_sample / SR) % 1.0
    diff = (phase - expected + 0.5) % 1.0 - 0.5
    assert np.abs(diff).max() < 1e-4


def test_frame_values_sit_at_their_frame_centres():
    """Frame t's value is sample t*hop's (the centre of mel frame t): a ramp over frames becomes the
    ramp n/hop over samples, held after the last frame."""
    frames = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    out = frames_to_samples(frames, 4)[0, 0]
    want = torch.cat([torch.arange(13) / 4, torch.full((3,), 3.0)])
    torch.testing.assert_close(out, want)


def test_band_filters_sum_to_an_impulse():
    """The band-passes tile 0..Nyquist: their sum is the windowed sinc at Nyquist, a unit impulse."""
    bank = band_filters(12)[:, 0].double().sum(0).numpy()
    impulse = np.zeros(NOISE_TAPS)
    impulse[NOISE_TAPS // 2] = 1.0
    np.testing.assert_allclose(bank, impulse, atol=1e-6)


@pytest.mark.parametrize("f0", [95.0, 210.0])
def test_voiced_output_is_the_harmonic_sum_the_envelope_gives(f0):
    """With the envelope and aperiodicity fixed and the noise row of the excitation zero, the output is
    sum_k A_k sin(2 pi k f0 (n+1) / sr) with A_k = exp(envelope at k*f0) * sqrt(4 f0 / sr) *
    sqrt(1 - sigmoid(logit of k*f0's band)) (np.interp for the envelope), nothing at or above Nyquist:
    the pitch is F0's."""
    g = generator(n_harmonics=150, envelope_bins=32, noise_bands=4)
    envelope = np.linspace(-2.0, -6.0, 32) + 0.5 * np.sin(np.arange(32))
    logits = np.array([-3.0, -1.0, 0.5, 2.0])
    fixed_envelope(g, envelope, logits)
    t = 20
    f0s = torch.full((1, t), f0)
    excitation = g.source(f0s, deterministic=True)
    excitation[:, -1] = 0
    with torch.no_grad():
        wave = g.render(torch.randn(1, 16, t), torch.randn(1, 8), f0s, excitation)[0, 0].double().numpy()
    n = np.arange(t * HOP)
    expected = np.zeros_like(wave)
    for k in range(1, 151):
        if k * f0 >= SR / 2:
            break
        a = 1 / (1 + math.exp(-logits[int(k * f0 / (SR / 2) * 4)]))
        amp = math.exp(np.interp(k * f0 / (SR / 2) * 31, np.arange(32), envelope))
        amp *= math.sqrt(4 * f0 / SR) * math.sqrt(1 - a)
        expected += amp * np.sin(2 * np.pi * ((k * f0 * (n + 1) / SR) % 1.0))
    assert np.abs(wave - expected).max() < 2e-3 * np.abs(expected).max()


def _band_power(wave: torch.Tensor, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave.double().numpy())) ** 2
    freqs = np.fft.rfftfreq(wave.numel(), 1 / SR)
    return float(spectrum[(freqs > low) & (freqs < high)].sum())


def test_one_envelope_gives_the_same_power_periodic_or_not():
    """The envelope is a power density: a flat envelope gives the same power in a band whether the
    frame is all harmonics (aperiodicity 0) or all noise (aperiodicity 1): harmonic amplitude
    sqrt(4 F0 / sr) per unit density, as a harmonic's power A^2/2 is spread over F0 Hz and unit white
    noise over sr/2."""
    g = generator(n_harmonics=150, envelope_bins=16, noise_bands=4)
    t, x, s = 80, torch.randn(1, 16, 80), torch.randn(1, 8)
    f0 = torch.full((1, t), 130.0)
    powers = []
    for logit in (-30.0, 30.0):
        fixed_envelope(g, np.full(16, -3.0), np.full(4, logit))
        with torch.no_grad():
            powers.append(_band_power(g(x, s, f0, deterministic=True)[0, 0], 1000, 5000))
    assert 0.85 < powers[0] / powers[1] < 1.15


def test_unvoiced_frames_are_all_noise_under_the_envelope():
    """F0 = 0: no harmonics; each noise band takes the envelope at its centre whatever the aperiodicity
    (an envelope loud only around band 2's centre, 6-9 kHz, gives noise in that band alone)."""
    g = generator(n_harmonics=20, envelope_bins=16, noise_bands=4)
    envelope = np.full(16, -60.0)
    envelope[9:11] = 0.0  # band 2's centre is at bin 9.375 of 0..15
    fixed_envelope(g, envelope, np.full(4, -30.0))
    with torch.no_grad():
        wave = g(torch.randn(1, 16, 40), torch.randn(1, 8), torch.zeros(1, 40), deterministic=True)[0, 0]
    inside, outside = _band_power(wave, 6200, 8800), _band_power(wave, 0, 5000) + _band_power(wave, 10000, SR)
    assert wave.abs().max() > 0.1 and inside > 100 * outside


def test_noise_draws_are_given_seeded_or_fixed():
    g = generator(n_harmonics=8, envelope_bins=8, noise_bands=2)
    x, s, f0 = torch.randn(2, 16, 6), torch.randn(2, 8), torch.zeros(2, 6)
    with torch.no_grad():
        a = g(x, s, f0, deterministic=True)
        b = g(x, s, f0, deterministic=True)
        c = g(x, s, f0, generators=[torch.Generator().manual_seed(i) for i in (1, 2)])
        d = g(x, s, f0, generators=[torch.Generator().manual_seed(i) for i in (1, 2)])
    assert torch.equal(a, b) and torch.equal(c, d) and not torch.equal(a, c)


@pytest.mark.slow
def test_harmonic_decoder_builds_trains_and_round_trips(tmp_path):
    """An iSTFTNet config turned to ``decoder.type: harmonic`` builds a model whose decoder outputs
    hop*2 samples per text frame, passes gradients to the generator's weights, and saves/loads exactly."""
    from tts_adapt.models.styletts2 import load_official, save_official
    from tts_adapt.models.styletts2.config import BASE_ISTFTNET_CONFIG

    config = yaml.safe_load(open(BASE_ISTFTNET_CONFIG, encoding="utf-8"))
    dec = config["model_params"]["decoder"]
    dec.update(type="harmonic", upsample_rates=[300], upsample_kernel_sizes=[1], n_harmonics=40)
    for key in ("gen_istft_n_fft", "gen_istft_hop_size"):
        dec.pop(key)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    model = build_model(str(path))
    assert model.decoder.samples_per_frame == 600
    t = 12
    wave = model.decoder(
        torch.randn(2, 128, t), torch.full((2, 2 * t), 150.0), torch.randn(2, 2 * t), torch.randn(2, 64)
    )
    assert wave.shape == (2, 1, 600 * t)
    wave.square().mean().backward()
    assert model.decoder.generator.conv_post.weight_v.grad.abs().sum() > 0
    save_official(model, tmp_path / "m.pth")
    again = load_official(tmp_path / "m.pth", path)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_training_feeds_the_harmonic_generator_the_f0_unsmoothed():
    """The official decoder box-filters F0 (width 0, 3 or 7) in training; the harmonic decoder must not,
    or the excitation's harmonics would sit away from the target's. Over 12 training-mode calls (the
    width is drawn at random) the generator receives the F0 exactly as given."""
    from tts_adapt.models.styletts2.decoder import Decoder

    dec = Decoder(
        dim_in=16,
        style_dim=8,
        resblock_kernel_sizes=[3],
        upsample_rates=[HOP],
        upsample_initial_channel=16,
        resblock_dilation_sizes=[[1]],
        upsample_kernel_sizes=[1],
        type="harmonic",
        block_channels=16,
        text_residual_channels=4,
        harmonic={"n_harmonics": 8, "envelope_bins": 8, "noise_bands": 2},
    ).train()
    seen = []
    dec.generator.register_forward_hook(lambda mod, args, out: seen.append(args[2].clone()))
    f0 = torch.cat([torch.full((1, 10), 100.0), torch.full((1, 10), 250.0)], dim=1)
    for _ in range(12):
        dec(torch.randn(1, 16, 10), f0, torch.randn(1, 20), torch.randn(1, 8))
    assert all(torch.equal(f, f0) for f in seen)
