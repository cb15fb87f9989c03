import pytest

from tts_adapt.evaluation.asr import get_transcriber
from tts_adapt.evaluation.text_norm import normalize_text

from .conftest import SENTENCES, needs_espeak


def _words(text: str) -> list[str]:
    """Normalised words (the normaliser has its own tests; here the edit distance is the oracle)."""
    return normalize_text(text).split()


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance by the textbook dynamic programme (the oracle for ``wer``)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


@needs_espeak
def test_pocketsphinx_scores_agree_with_its_hypothesis(voices):
    """WER = word edit distance / reference words, recomputed here from the returned hypothesis; the
    recogniser hears English words in espeak speech (it is weak there, but not deaf)."""
    asr = get_transcriber("pocketsphinx")
    heard = 0
    for path, text in zip(voices["A"], SENTENCES):
        r = asr.score(path, text)
        ref, hyp = _words(text), _words(r["hypothesis"])
        assert r["wer"] == pytest.approx(_edit_distance(ref, hyp) / len(ref))
        heard += len(hyp)
    assert heard > 0


def test_whisper_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="whisper-large-v3"):
        get_transcriber("whisper")
    with pytest.raises(FileNotFoundError, match="not found"):
        get_transcriber("whisper", model_path=tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown ASR backend"):
        get_transcriber("nope")
