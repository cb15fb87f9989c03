import pytest

from tts_adapt.evaluation.audio_io import load_wave
from tts_adapt.evaluation.degrade import add_noise, garble
from tts_adapt.evaluation.quality import DNSMOS, UTMOS

from .conftest import needs_espeak


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
