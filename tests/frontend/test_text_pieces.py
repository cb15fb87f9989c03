"""The model's text front end: its vocabulary and boundary tokens, refused characters, long texts."""

from __future__ import annotations

import shutil

import pytest

from tts_adapt.models.styletts2.config import KOKORO_CONFIG, load_config
from tts_adapt.models.styletts2.frontend import TextFrontend

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def kokoro_frontend(max_tokens: int = 512) -> TextFrontend:
    return TextFrontend.for_config(load_config(KOKORO_CONFIG), max_tokens)


def test_kokoro_ids_have_a_boundary_token_on_both_sides():
    # ids from Kokoro's config.json: h 50, ə 83, l 54, ˈ 156, o 57; the boundary token is 0
    fe = kokoro_frontend()
    assert fe.encode("həlˈo") == [0, 50, 83, 54, 156, 57, 0]
    assert fe.n_phoneme_tokens(fe.encode("həlˈo")) == 5
    # the StyleTTS 2 convention: its own table (h 50, ə 83, l 54, ˈ 156, o 57 there too), start token only
    assert TextFrontend().encode("həlˈo") == [0, 50, 83, 54, 156, 57]


def test_unreadable_characters_are_refused_by_name():
    fe = kokoro_frontend()
    with pytest.raises(ValueError, match=r"U\+1F600 GRINNING FACE.*U\+4F60 CJK"):
        fe.phonemize("Hello 😀 你好 world")
    with pytest.raises(ValueError, match="empty"):
        fe.phonemize("   ")


def test_symbols_outside_the_vocabulary_are_reported(caplog):
    fe = kokoro_frontend()
    assert fe.encode("hɘl") == [0, 50, 54, 0]  # ɘ is in StyleTTS 2's table, not in Kokoro's
    assert "U+0258" in caplog.text


def test_long_phonemes_are_cut_at_sentence_ends_then_word_breaks():
    fe = kokoro_frontend(max_tokens=40)
    sentences = ["ðɪs ɪz wˈʌn.", "ðɪs ɪz tˈuː.", "ænd ðɪs ɪz ðə θˈɜːd wˈʌn, ə bˈɪt lˈɒŋɡɚ ðɐn ðə ˈʌðɚz."]
    text = " ".join(sentences)
    pieces = fe.pieces(None, text)
    assert len(pieces) > 1
    assert all(len(p) <= 40 for p in pieces)
    # nothing lost or reordered: the pieces' symbols, boundaries removed, are the text's (spaces aside)
    joined = "".join(str(i) + "," for p in pieces for i in p[1:-1] if i != fe.vocab[" "])
    assert joined == "".join(str(i) + "," for i in fe.encode(text)[1:-1] if i != fe.vocab[" "])
    # the first two sentences fit together; a sentence never straddles two pieces if it fits alone
    assert pieces[0] == fe.encode(sentences[0] + " " + sentences[1])
    one = fe.pieces(None, "ðɪs ɪz wˈʌn.")
    assert one == [fe.encode("ðɪs ɪz wˈʌn.")]


def test_a_word_longer_than_the_context_is_cut_anyway():
    fe = kokoro_frontend(max_tokens=10)
    pieces = fe.pieces(None, "a" * 25)
    assert [len(p) for p in pieces] == [10, 10, 10, 3]  # 8 + 8 + 8 + 1 symbols, each with its two boundaries


@needs_espeak
def test_long_text_is_phonemised_per_sentence_only_when_it_does_not_fit():
    fe = kokoro_frontend()
    short = "Hello there. How are you?"
    assert fe.pieces(short) == [fe.encode(fe.phonemize(short))]
    sentences = [f"This is sentence number {n}, which goes on for a while." for n in range(1, 16)]
    pieces = fe.pieces(" ".join(sentences))
    assert len(pieces) >= 2 and all(len(p) <= 512 for p in pieces)
    # every sentence's phonemes, joined by one space within a piece: nothing dropped, nothing added
    per_sentence = sum(len(fe.encode(fe.phonemize(s))) - 2 for s in sentences)
    assert sum(len(p) - 2 for p in pieces) == per_sentence + len(sentences) - len(pieces)
