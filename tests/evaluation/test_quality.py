import numpy as np
import pytest

from tts_adapt.evaluation.audio_io import load_wave
from tts_adapt.evaluation.degrade import add_noise, garble
from tts_adapt.evaluation.quality import DNSMOS, UTMOS, DistillMOS

from ..conftest import missing_input
from .conftest import needs_espeak


@pytest.mark.slow
@needs_espeak
def test_dnsmos_is_lower_for_degraded_audio(voices):
    dns = DNSMOS()
    path = voices["A"][0]
    w = load_wave(path, 16000)
    clean, noisy, garbled = dns.score(
        [path, (add_noise(w, 0, seed=0) * 0.5, 16000), (garble(w, 16000), 16000)]
    )
    assert set(clean) == {"ovrl", "sig", "bak", "p808"}
    assert 1.0 <= clean["ovrl"] <= 5.0
    assert noisy["ovrl"] < clean["ovrl"] - 0.5
    assert noisy["bak"] < clean["bak"]
    assert garbled["ovrl"] < clean["ovrl"]


def test_utmos_without_weights_names_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?i)utmos"):
        UTMOS(repo=tmp_path)
    (tmp_path / "hubconf.py").write_text("")
    with pytest.raises(FileNotFoundError, match="utmos22_strong_step7459_v1.pt|weights"):
        UTMOS(repo=tmp_path, weights=tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def distillmos():
    import importlib.util

    if importlib.util.find_spec("distillmos") is None:
        missing_input("distillmos is not installed (pip install 'tts-adapt[eval]')")
    return DistillMOS()


@needs_espeak
def test_distillmos_scores_clean_speech_above_heavily_degraded_speech(distillmos, voices):
    """Each of four sentences scores higher clean than under white noise at 0 dB SNR, and on average
    clearly higher than with its 80 ms pieces shuffled. (Light noise is not asked: on espeak-ng speech,
    whose pauses are digital silence, Distill-MOS rises at 30 and 15 dB SNR; docs/evaluation.md.)"""
    waves = [load_wave(p, 16000) for p in voices["A"]]
    clean = distillmos.score_waves(waves)
    noisy = distillmos.score_waves([add_noise(w, 0, seed=1) for w in waves])
    garbled = distillmos.score_waves([garble(w, 16000, seed=1) for w in waves])
    assert all(1.0 <= c <= 5.0 for c in clean)
    assert all(c > n for c, n in zip(clean, noisy)), (clean, noisy)
    assert sum(clean) / 4 - sum(garbled) / 4 >= 0.5, (clean, garbled)


def test_distillmos_refuses_a_clip_too_short_to_rate(distillmos):
    with pytest.raises(ValueError, match="too short"):
        distillmos.score([(np.zeros(800, dtype=np.float32), 16000)])
