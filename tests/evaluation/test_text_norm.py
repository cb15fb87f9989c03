import random

import pytest

from tts_adapt.evaluation.text_norm import cer, edit_distance, normalize_text, number_to_words, wer


def _reference_distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[:], i
        for j in range(1, len(b) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1]


def test_edit_distance_matches_textbook_dynamic_programme():
    rng = random.Random(0)
    for _ in range(500):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 9))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 9))]
        assert edit_distance(a, b) == _reference_distance(a, b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("It’s 2024.", "it's two thousand twenty four"),
        ("the 21st of 3,500 men", "the twenty first of three thousand five hundred men"),
        ("50% & more", "fifty percent and more"),
        ("3.5 'quoted' words", "three point five quoted words"),
        ("two hundred and ninety two", "two hundred ninety two"),
        ("bread and butter", "bread and butter"),
        ("well-known", "well known"),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_numbers_spelled_like_corpus_text():
    assert normalize_text("There were 292 miles") == normalize_text(
        "There were two hundred and ninety two miles"
    )
    assert number_to_words(1_000_001) == "one million one"


def test_wer_and_cer():
    assert wer("The cat sat.", "the cat sat") == 0.0
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert wer("the cat sat", "") == 1.0
    assert cer("abc", "abd") == pytest.approx(1 / 3)
