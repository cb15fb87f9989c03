import numpy as np
import pytest

from tts_adapt.evaluation.asr import get_transcriber

from .conftest import SENTENCES, needs_espeak


@needs_espeak
def test_pocketsphinx_returns_numbers_on_any_audio(voices):
    asr = get_transcriber("pocketsphinx")
    r = asr.score(voices["B"][1], SENTENCES[1])
    assert isinstance(r["hypothesis"], str)
    assert 0.0 <= r["wer"] and np.isfinite(r["wer"]) and np.isfinite(r["cer"])
    noise = (np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.05, 16000)
    r2 = asr.score(noise, "hello world")
    assert np.isfinite(r2["wer"]) and r2["wer"] >= 0.0


def test_whisper_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="whisper-large-v3"):
        get_transcriber("whisper")
    with pytest.raises(FileNotFoundError, match="not found"):
        get_transcriber("whisper", model_path=tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown ASR backend"):
        get_transcriber("nope")
