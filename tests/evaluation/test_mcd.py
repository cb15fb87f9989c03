import pytest

from tts_adapt.evaluation.audio_io import load_wave
from tts_adapt.evaluation.degrade import add_noise, garble
from tts_adapt.evaluation.mcd import MCD_SAMPLE_RATE, mcd_dtw

from .conftest import needs_espeak

pytestmark = needs_espeak


def test_identical_audio_has_zero_mcd(voices):
    assert mcd_dtw(voices["A"][0], voices["A"][0]) == pytest.approx(0.0, abs=1e-9)


def test_mcd_rises_with_degradation(voices):
    ref = voices["A"][1]
    w = load_wave(ref, MCD_SAMPLE_RATE)
    sr = MCD_SAMPLE_RATE
    scores = [mcd_dtw(ref, (add_noise(w, snr, seed=1), sr)) for snr in (30, 15, 5)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[0] < 2.5  # light noise barely moves it
    assert mcd_dtw(ref, (garble(w, sr, seed=1), sr)) > scores[0]


def test_other_voice_is_farther_than_light_noise(voices):
    ref = voices["A"][1]
    w = load_wave(ref, MCD_SAMPLE_RATE)
    other_voice = mcd_dtw(ref, voices["B"][1])
    assert other_voice > mcd_dtw(ref, (add_noise(w, 30, seed=2), MCD_SAMPLE_RATE))
    assert 2.0 < other_voice < 15.0  # the usual dB range, not a scaling slip


def test_too_short_audio_is_an_error():
    import numpy as np

    with pytest.raises(ValueError, match="too short"):
        mcd_dtw((np.zeros(100, dtype=np.float32), 22050), (np.zeros(100, dtype=np.float32), 22050))
