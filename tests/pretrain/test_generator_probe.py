"""The generator probe: its target tones have the pitch they are made for, its following measure gives
slope 1 for a generator that renders its F0 and 0 for one that ignores it, and what it trains drops into
a model's decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from tests.signals import SR
from tests.signals import harmonic_tone as reference_tone
from tts_adapt.evaluation.pitch_following import median_pitch
from tts_adapt.pretrain import generator_probe as gp


@pytest.mark.parametrize("hz", [95.0, 140.0, 220.0])
def test_target_tone_has_the_given_pitch(hz):
    tone = gp.harmonic_tone(np.full((1, 80), hz), np.random.default_rng(0))[0]
    assert tone.shape == (80 * 300,)
    assert median_pitch(tone) == pytest.approx(hz, rel=0.02)


class Oracle(nn.Module):
    """A "generator" that renders exactly its F0 (or, with ``fixed``, always the same pitch)."""

    def __init__(self, fixed: float | None = None) -> None:
        super().__init__()
        self.fixed = fixed
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, style, f0, deterministic=False):
        f0 = torch.full_like(f0, self.fixed) if self.fixed else f0
        wave = gp.harmonic_tone(f0.detach().numpy(), np.random.default_rng(0))
        return torch.from_numpy(wave).unsqueeze(1) + 0 * self.weight


def voiced_probes(pitches):
    return [
        (torch.full((1, 80), hz), torch.from_numpy(reference_tone(hz, 80 * 300 / SR))[None]) for hz in pitches
    ]


@pytest.mark.parametrize("task", ["tones", "corpus"])
def test_following_measure(task):
    probes = voiced_probes([110.0, 170.0]) if task == "corpus" else None
    follows = gp.measure(gp.GeneratorProbe(Oracle(), 8, 4, task), probes)
    ignores = gp.measure(gp.GeneratorProbe(Oracle(fixed=80.0), 8, 4, task), probes)
    assert follows["slope"] == pytest.approx(1.0, abs=0.05)
    assert ignores["slope"] == pytest.approx(0.0, abs=0.05)
    if task == "tones":
        assert follows["output"] == pytest.approx(list(gp.TONE_PITCHES), rel=0.02)
        assert ignores["output"] == pytest.approx([80.0] * 3, rel=0.02)


def test_corpus_crops_pair_each_wave_with_its_f0(tmp_path):
    rng = np.random.default_rng(0)
    for i, hz in enumerate([100.0, 130.0, 160.0, 190.0]):
        sf.write(tmp_path / f"u{i}.wav", reference_tone(hz, 1.5), SR)
    crops = gp.CorpusCrops(sorted(tmp_path.glob("*.wav")), "yin", 20, rng)
    f0, wave = crops.batch(6)
    assert f0.shape == (6, 20) and wave.shape == (6, 20 * 300)
    for f, w in zip(f0.numpy(), wave.numpy()):
        assert np.median(f[f > 0]) == pytest.approx(median_pitch(w), rel=0.03)
    probes = crops.probes(frames=40)
    assert len(probes) == 4 and all(w.shape == (1, 40 * 300) for _, w in probes)


def test_corpus_of_another_rate_is_refused(tmp_path):
    sf.write(tmp_path / "a.wav", reference_tone(120.0, 1.0, 16000), 16000)
    with pytest.raises(ValueError, match="a.wav.*24000"):
        gp.CorpusCrops([tmp_path / "a.wav"], "yin", 20, np.random.default_rng(0))


@pytest.mark.slow
def test_trained_generator_drops_into_the_model(tmp_path):
    """A short run on tones lowers the loss, and its weights load into the model's decoder as they are."""
    from tts_adapt.models.styletts2 import build_model
    from tts_adapt.models.styletts2.config import BASE_ISTFTNET_CONFIG
    from tts_adapt.utils.io import load_tensors

    log, out = tmp_path / "logs" / "log.jsonl", tmp_path / "gen.safetensors"
    args = ["--steps", "12", "--every", "1", "--batch-size", "2", "--frames", "20", "--threads", "1"]
    assert gp.main([*args, "--save", str(out), "--log", str(log)]) == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 12
    assert np.mean([r["loss"] for r in rows[-3:]]) < np.mean([r["loss"] for r in rows[:3]])
    weights, _ = load_tensors(out)
    build_model(BASE_ISTFTNET_CONFIG).decoder.generator.load_state_dict(
        weights
    )  # strict: same keys and shapes


@pytest.mark.parametrize("argv", [["--task", "corpus"], ["--lambda-gen", "-1"]])
def test_unusable_settings_are_usage_errors(argv):
    with pytest.raises(SystemExit) as stop:
        gp.main(argv)
    assert stop.value.code == 2


def test_min_pitch_keeps_only_high_voices(tmp_path):
    for i, hz in enumerate([100.0, 120.0, 170.0, 190.0, 210.0, 230.0]):
        sf.write(tmp_path / f"u{i}.wav", reference_tone(hz, 1.5), SR)
    files = sorted(tmp_path.glob("*.wav"))
    crops = gp.CorpusCrops(files, "yin", 20, np.random.default_rng(0), min_pitch=150.0)
    assert len(crops.items) == 4
    assert all(np.median(f[f > 0]) > 150 for _, f in crops.items)
    with pytest.raises(ValueError, match="median pitch of at least 200 Hz"):
        gp.CorpusCrops(files, "yin", 20, np.random.default_rng(0), min_pitch=200.0)


def test_interpolating_upsamplers_have_no_per_frame_pattern():
    """A constant input comes out constant (away from the edges) and a ramp comes out a ramp: nothing in
    the upsampled signal repeats every input frame, which a trained transposed convolution does."""
    generator, _, channels = gp.build_generator("base-istftnet")
    assert gp.interpolating_upsamplers(generator) == len(generator.ups)
    up = generator.ups[0]
    assert not any(p.requires_grad for p in up.parameters())
    u = up.stride[0]
    with torch.no_grad():
        flat = up(torch.ones(1, channels, 12))[..., 2 * u : -2 * u]
        ramp = up(torch.arange(12.0).expand(1, channels, 12))[..., 2 * u : -2 * u]
    assert torch.allclose(flat, flat[..., :1].expand_as(flat), atol=1e-5)
    steps = ramp.diff(dim=-1)  # a ramp's upsampled steps are all equal
    assert torch.allclose(steps, steps[..., :1].expand_as(steps), atol=1e-4)
    trained = gp.build_generator("base-istftnet")[0].ups[0]
    with torch.no_grad():
        flat = trained(torch.ones(1, channels, 12))[..., 2 * u : -2 * u]
    assert not torch.allclose(flat, flat[..., :1].expand_as(flat), atol=1e-3)  # the default init does repeat


def test_adversarial_step_updates_the_discriminators_then_weighs_the_generator_loss():
    """The official first-stage order: the discriminators take one step on real vs the detached fake, then
    the generator's loss is 5 x mel + lambda_gen x (adversarial + feature matching) against the updated
    discriminators, and its gradient reaches the generator but not the discriminators."""
    from tts_adapt.objective.adversarial import mpd_msd_generator_loss
    from tts_adapt.objective.spectral import MultiResolutionMelLoss

    torch.manual_seed(0)
    generator, style_dim, channels, discs = gp.build_parts("base-istftnet")
    probe = gp.GeneratorProbe(generator, style_dim, channels, "tones")
    f0 = torch.full((2, 20), 120.0)
    real = torch.from_numpy(gp.harmonic_tone(f0.numpy(), np.random.default_rng(0)))
    fake = probe(f0)
    mel = MultiResolutionMelLoss(gp.SAMPLE_RATE)(fake, real).mean()
    before = {k: v.detach().clone() for k, v in discs.state_dict().items()}
    opt = torch.optim.SGD(discs.parameters(), lr=1e-2)
    loss = gp.adversarial_step(discs, opt, real, fake, mel, 0.5)
    after = discs.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the discriminators stepped
    with torch.no_grad():
        gen = mpd_msd_generator_loss(discs["mpd"], discs["msd"], real[:, None], fake[:, None])
    assert loss.item() == pytest.approx(5 * mel.item() + 0.5 * gen.item(), rel=1e-5)
    disc_grads = [p.grad.clone() for p in discs.parameters()]
    loss.backward()
    assert all(torch.equal(g, p.grad) for g, p in zip(disc_grads, discs.parameters()))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
