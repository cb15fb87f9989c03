"""The pitch-following diagnostic: its pitch measure, its slope, and its capture of the decoder's inputs."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from tts_adapt.evaluation.pitch_following import decoder_inputs, follow, level_slope, median_pitch, slope
from tts_adapt.models.styletts2.source import SineGen, upsample_f0

from ..signals import SR, harmonic_tone


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_median_pitch_of_a_harmonic_tone(f0):
    assert median_pitch(harmonic_tone(f0)) == pytest.approx(f0, rel=0.02)


def test_median_pitch_of_silence_is_nan():
    assert math.isnan(median_pitch(np.zeros(SR, dtype=np.float32)))


def test_slope_closed_forms():
    assert slope([0.5, 1, 2], [50, 100, 200]) == pytest.approx(1.0)
    assert slope([0.5, 1, 2], [80, 80, 80]) == pytest.approx(0.0, abs=1e-12)
    assert slope([0.5, 1, 2], [math.nan, 100, 200]) == pytest.approx(1.0)  # unvoiced outputs are left out
    assert math.isnan(slope([0.5, 1, 2], [math.nan, math.nan, 100]))


def test_level_slope_closed_forms():
    """A predictor that halves each voice's distance in octaves from 120 Hz has level slope 0.5; one
    that keeps every level, 1; one that gives every voice the same pitch, 0."""
    refs = [75.0, 100.0, 200.0, 260.0]
    assert level_slope(refs, [120 * (r / 120) ** 0.5 for r in refs]) == pytest.approx(0.5)
    assert level_slope(refs, [1.1 * r for r in refs]) == pytest.approx(1.0)
    assert level_slope(refs, [120.0] * 4) == pytest.approx(0.0, abs=1e-12)


def test_a_decoder_that_renders_its_f0_has_slope_one():
    """The model's own sine source (fundamental only) as the 'decoder': output pitch = F0 x factor."""
    sine = SineGen(SR, 300, harmonic_num=0)

    def decode(asr, f0, n, ref):
        return sine(upsample_f0(f0, 300), deterministic=True)[0]

    f0 = torch.full((1, 160), 120.0)
    inputs = (torch.zeros(1, 8, 80), f0, torch.zeros(1, 160), torch.zeros(1, 16))
    result = follow(inputs, decode, (0.5, 1.0, 2.0))
    assert result["f0_median"] == pytest.approx(120.0)
    assert result["output_pitch"] == pytest.approx([60.0, 120.0, 240.0], rel=0.02)
    assert result["slope"] == pytest.approx(1.0, abs=0.03)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_captured_inputs_are_what_synthesis_decodes():
    """Decoding the captured inputs again gives the waveform synthesis returned, so the factors scale the
    F0 of a real synthesis and nothing else."""
    from tts_adapt.models.styletts2 import INFERENCE_MODULES, load_official
    from tts_adapt.models.styletts2.default import default_model_paths
    from tts_adapt.models.styletts2.shipped_voices import shipped_voices

    model = load_official(*default_model_paths(), modules=INFERENCE_MODULES).eval()
    reference = str(next(iter(shipped_voices().values())).path)
    wave, _ = model.synthesize("Hello there.", reference=reference, seed=0, deterministic=True)
    asr, f0, n, ref = decoder_inputs(model, reference, "Hello there.", seed=0)
    assert f0.shape[-1] == n.shape[-1] == 2 * asr.shape[-1]
    with torch.no_grad():
        again = model.decoder(asr, f0, n, ref, deterministic=True).reshape(-1).numpy()
    assert len(again) >= len(wave)
    np.testing.assert_allclose(again[: len(wave)], wave, atol=1e-5)
