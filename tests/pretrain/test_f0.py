"""The DSP F0 tracker used for pre-training targets, against signals whose pitch is known."""

from __future__ import annotations

import numpy as np
import pytest

from tts_adapt.pretrain.f0 import track_f0

from ..signals import SR
from ..signals import harmonic_tone as harmonic


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_yin_finds_the_pitch_of_a_harmonic_tone(f0):
    track = track_f0(harmonic(f0), SR, "yin")
    voiced = track[track > 0]
    assert len(voiced) > 0.8 * len(track)
    assert np.median(np.abs(voiced / f0 - 1)) < 0.02


def test_silence_and_noise_are_unvoiced():
    rng = np.random.default_rng(0)
    wave = np.concatenate([np.zeros(SR // 2), 0.3 * rng.standard_normal(SR // 2)]).astype(np.float32)
    wave = np.concatenate([wave, harmonic(120.0, 0.5)])
    track = track_f0(wave, SR, "yin")
    frames_per_half = SR // 2 // 300
    assert (track[: frames_per_half - 4] == 0).all()  # silence
    assert (track[frames_per_half + 4 : 2 * frames_per_half - 4] == 0).mean() > 0.9  # white noise
    assert (track[2 * frames_per_half + 4 : -4] > 0).mean() > 0.9


def test_framing_matches_the_mel():
    """One F0 value per mel frame: the log-mel uses hop 300 with centred frames."""
    from tts_adapt.audio import log_mel

    wave = harmonic(200.0, 0.77)
    assert len(track_f0(wave, SR, "yin")) == log_mel(wave).shape[-1]


def test_unknown_tracker_is_refused():
    with pytest.raises(ValueError, match="yin, pyin"):
        track_f0(harmonic(100.0), SR, "crepe")
