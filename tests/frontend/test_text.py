"""Symbol table, tokeniser and phonemiser against the official facts in symbols.json/preprocessing.json."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from tts_adapt.text import SYMBOLS, Phonemizer, Tokenizer, length_to_mask


@pytest.fixture(scope="module")
def symbols(fixtures_dir):
    return json.loads((fixtures_dir / "symbols.json").read_text(encoding="utf-8"))


def test_symbol_table_is_the_official_one(symbols):
    assert SYMBOLS == symbols["symbols"]
    assert [f"U+{ord(c):04X}" for c in SYMBOLS] == symbols["symbols_codepoints"]
    assert Tokenizer().encode("'", add_start=False) == [max(symbols["duplicates"]["'"])]


def test_examples(symbols, caplog):
    tok = Tokenizer()
    for ex in symbols["examples"]:
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            assert tok.encode(ex["text"], add_start=False) == ex["ids"]
            assert tok.encode(ex["text"]) == ex["ids_with_start_token"]
        if ex["unknown_chars_dropped"]:
            assert tok.unknown(ex["text"]) == ex["unknown_chars_dropped"]
            assert all(repr(c) in caplog.text for c in ex["unknown_chars_dropped"])
        else:
            assert not caplog.records


def test_strict_tokenizer_raises():
    with pytest.raises(ValueError, match="'#'"):
        Tokenizer(strict=True).encode("a#b")


def test_batch_and_mask():
    ids, lengths = Tokenizer().batch(["ab", "abcd"])
    assert ids.shape == (2, 5) and lengths.tolist() == [3, 5]
    assert ids[0, 3:].tolist() == [0, 0]
    assert length_to_mask(lengths).tolist() == [[False] * 3 + [True] * 2, [False] * 5]


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@needs_espeak
def test_phonemizer_matches_the_notebook_and_caches(tmp_path, symbols):
    cache = tmp_path / "ph.sqlite"
    p = Phonemizer(cache_path=cache)
    ps = p("The quick brown fox")
    assert ps == symbols["examples"][0]["text"]
    # punctuation is split off into its own token, as NLTK word_tokenize does in the notebook
    assert p("Hello, world!") == "həlˈoʊ , wˈɜːld !"
    # a second phonemiser on the same cache never needs espeak for known texts
    again = Phonemizer(cache_path=cache)

    def broken_backend():
        raise AssertionError("espeak should not be called for a cached text")

    again._get_backend = broken_backend
    again.settings_key = p.settings_key
    assert again("The quick brown fox") == ps


@needs_espeak
def test_a_text_espeak_breaks_over_lines_stays_one_text(tmp_path, caplog):
    """espeak-ng ends a line inside "$3.50": phonemizer then returns more strings than texts, which must
    not shift the following texts' phonemes; its words-count-mismatch warning stays out of the log."""
    texts = ["Mr. Smith paid $3.50 for the well-known book.", "Hello there."]
    alone = [Phonemizer(cache=False)(t) for t in texts]  # one text per espeak call
    with caplog.at_level(logging.INFO):
        together = Phonemizer(cache=False).phonemize(texts)
    assert together == alone
    assert "dˈɑːlɚ" in together[0] and "fˈɪfti" in together[0]
    assert "mismatch" not in caplog.text
