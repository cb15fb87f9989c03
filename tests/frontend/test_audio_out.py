"""A clip written for listening: speech level, peak, fade and tail, against hand-computed signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tts_adapt.audio_out import dbfs, finish_for_listening, speech_rms

SR = 24000


def sine(amplitude: float, seconds: float, hz: float = 200.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amplitude * np.sin(2 * np.pi * hz * t)


def test_speech_level_of_a_sine_ignores_the_pause_after_it():
    """A sine of amplitude A has RMS A/sqrt(2); half a second of near-silence after it (-80 dB) is a
    pause, not speech, so the level stays A/sqrt(2) where a plain RMS would drop by 3 dB."""
    tone = sine(0.5, 0.5)
    with_pause = np.concatenate([tone, sine(0.5e-4, 0.5)])
    assert speech_rms(tone, SR) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert speech_rms(with_pause, SR) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    plain = float(np.sqrt(np.mean(with_pause**2)))
    assert dbfs(plain) == pytest.approx(dbfs(0.5 / math.sqrt(2)) - 3.01, abs=0.02)


def test_two_voices_at_different_levels_come_out_at_the_same_one():
    """-20 dBFS = RMS 0.1: a quiet and a loud tone both end there (gain 0.1 / (A/sqrt 2))."""
    for amplitude in (0.02, 0.6):
        out, info = finish_for_listening(sine(amplitude, 1.0), SR, level_dbfs=-20.0, tail_s=0.0, fade_s=0.0)
        assert speech_rms(out, SR) == pytest.approx(0.1, rel=1e-3)
        assert info.gain_db == pytest.approx(20 * math.log10(0.1 * math.sqrt(2) / amplitude), abs=1e-6)
        assert not info.peak_limited and info.level_after == pytest.approx(-20.0, abs=0.01)


def test_the_peak_wins_over_the_level():
    """At -3 dBFS (RMS 0.708) a sine would peak at 1.0, above the 0.99 ceiling: it is scaled to the
    0.99 peak instead, never clipped, a little quieter than asked."""
    out, info = finish_for_listening(sine(1.2, 1.0), SR, level_dbfs=-3.0, tail_s=0.0, fade_s=0.0)
    assert info.peak_limited
    assert float(np.abs(out).max()) == pytest.approx(0.99, abs=1e-4)
    assert info.level_after == pytest.approx(dbfs(0.99 / math.sqrt(2)), abs=0.01)


def test_raw_level_keeps_the_wave_and_only_guards_the_peak():
    wave = sine(0.3, 0.5)
    out, info = finish_for_listening(wave, SR, level_dbfs=None, tail_s=0.0, fade_s=0.0)
    assert info.gain_db == 0.0 and np.allclose(out, wave, atol=1e-7)
    loud, info = finish_for_listening(sine(2.0, 0.5), SR, level_dbfs=None, tail_s=0.0, fade_s=0.0)
    assert info.peak_limited and float(np.abs(loud).max()) == pytest.approx(0.99, abs=1e-4)


def test_the_clip_ends_in_a_fade_and_a_tail_of_silence():
    """10 ms raised-cosine fade to exactly 0, then 0.25 s of zeros: nothing cut mid-sound."""
    wave = np.full(SR // 2, 0.25)  # a sound that would stop dead
    out, info = finish_for_listening(wave, SR, level_dbfs=None)
    n, tail, fade = len(wave), int(0.25 * SR), int(0.01 * SR)
    assert len(out) == n + tail and info.tail_s == 0.25
    assert np.all(out[n:] == 0) and out[n - 1] == 0.0
    ramp = out[n - fade : n]
    assert ramp[0] == pytest.approx(0.25) and np.all(np.diff(ramp) <= 1e-9)
    assert np.allclose(out[: n - fade], 0.25)
