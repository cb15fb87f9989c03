import random

import pytest

from tts_adapt.evaluation.text_norm import cer, edit_distance, normalize_text, wer


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
        # case, punctuation, quotes (apostrophes inside words stay)
        ("Hello, World!", "hello world"),
        ("It\u2019s 2024.", "it's 2024"),
        ("3.5 'quoted' words", "3.5 quoted words"),
        ("well-known", "well known"),
        # numbers to digits, the written and spoken forms alike
        ("the 21st of 3,500 men", "the 21st of 3500 men"),
        ("the twenty-first of three thousand five hundred men", "the 21st of 3500 men"),
        ("two hundred and ninety two", "292"),
        ("a thousand and one nights", "1001 nights"),
        ("one million two hundred thousand and six", "1200006"),
        ("three point one four", "3.14"),
        ("in nineteen ninety nine", "in 1999"),
        ("twenty twenty four", "2024"),
        ("nineteen oh five", "1905"),
        ("the nineteen nineties", "the 1990s"),
        ("one two three", "1 2 3"),
        ("bread and butter", "bread and butter"),
        ("50% & more", "50 percent and more"),
        ("fifty per cent", "50 percent"),
        ("It costs $5.50.", "it costs 5 dollars 50 cents"),
        ("five dollars and fifty cents", "5 dollars 50 cents"),
        ("one dollar", "1 dollars"),
        ("at 7:45 or 5pm", "at 7 45 or 5 pm"),
        ("starts at 10.30, pi is 3.14", "starts at 10 30 pi is 3.14"),
        # contractions and titles
        ("I won't go, can't you see?", "i will not go can not you see"),
        (
            "They're here; we'll see. I'd say she's been there.",
            "they are here we will see i would say she has been there",
        ),
        ("it's his dog's bone", "it's his dog's bone"),
        ("Mr. Smith met Dr Jones.", "mister smith met doctor jones"),
        ("The U.S.A. at 9 p.m.", "the usa at 9 pm"),
        ("we're gonna win", "we are going to win"),
        # British spellings where they differ
        ("The colour of the grey theatre", "the color of the gray theater"),
        (
            "They travelled to realise the organisation's aims",
            "they traveled to realize the organization's aims",
        ),
        ("We analysed the catalogue", "we analyzed the catalog"),
        # left as they are: words that only look British
        ("an hour of exercise, advise and devour", "an hour of exercise advise and devour"),
        # hesitations and annotations
        ("Um, I think, uh, hmm, yes", "i think yes"),
        ("yes [laughter] no <unk>", "yes no"),
        ("Caf\u00e9 na\u00efve \u00c6sop", "cafe naive aesop"),
    ],
)
def test_normalize_text(text, expected):
    """Hand-made cases after the conventions of Whisper's English normaliser (case, punctuation,
    contractions, numbers to digits, British to American spellings, fillers, bracketed annotations)."""
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("There were 292 miles", "There were two hundred and ninety two miles"),
        ("On 3 May 1999 at 7:45", "on three may nineteen ninety nine at seven forty five"),
        ("Colour me grey!", "color me gray"),
        ("It cost $20.", "It cost twenty dollars"),
        ("I can't, I won't.", "i cannot i will not"),
        ("Flight 21, gate 4", "flight twenty one gate four"),
        ("The meeting starts at 10:30.", "The meeting starts at 10.30."),
        ("The meeting starts at 10:30.", "the meeting starts at ten thirty"),
    ],
)
def test_written_and_spoken_forms_score_zero_wer(written, spoken):
    """A recogniser writing the spoken form of a reference's digits, or the other spelling, makes no
    error."""
    assert wer(written, spoken) == 0.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("it's here", "it is here"),  # 's is ambiguous and stays
        ("one two three", "one hundred twenty three"),
        ("a cat", "1 cat"),
        ("sea shells", "seashells"),  # compounds need a dictionary
    ],
)
def test_different_texts_stay_different(a, b):
    assert normalize_text(a) != normalize_text(b)


def test_wer_and_cer():
    assert wer("The cat sat.", "the cat sat") == 0.0
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert wer("the cat sat", "") == 1.0
    assert cer("abc", "abd") == pytest.approx(1 / 3)
