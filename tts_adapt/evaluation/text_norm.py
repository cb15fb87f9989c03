"""English text normalisation and edit-distance error rates (WER, CER, PER).

WER depends as much on normalisation as on the recogniser, so both sides go through the same
normaliser: Unicode NFKC, lower case, curly quotes and dashes unified, integers spelled out (0 to
999,999,999; ``1st`` style ordinals too), ``%``/``&`` spelled out, punctuation removed except
apostrophes inside words, whitespace collapsed. It is close in spirit to Whisper's basic normaliser;
it does not map British to American spellings or expand abbreviations.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split()
)
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """Cardinal English words for ``0 <= n < 10**9`` (larger numbers are read digit by digit)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**9:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for size, name in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return (
                number_to_words(n // size) + f" {name}" + ("" if rest == 0 else " " + number_to_words(rest))
            )
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return (head + " " + last).strip()


_NUM_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)?(?![\w])")
_PUNCT_RE = re.compile(r"[^\w\s']")
_NUMBER_WORDS = "|".join(_ONES[1:] + _TENS[2:])
_AND_RE = re.compile(rf"\b(hundred|thousand|million)\s+and\s+(?=(?:{_NUMBER_WORDS})\b)")


def normalize_text(text: str) -> str:
    """Normalised lower-case words separated by single spaces (see module docstring)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = re.sub(r"[\u2010-\u2015-]", " ", t)
    t = t.replace("%", " percent ").replace("&", " and ")

    def spell(m: re.Match) -> str:
        words = number_to_words(int(m.group(1).replace(",", "")))
        return " " + (_ordinal(words) if m.group(2) else words) + " "

    t = re.sub(r"(\d)\.(\d)", r"\1 point \2", t)
    t = _NUM_RE.sub(spell, t)
    t = re.sub(r"\d", lambda m: " " + _ONES[int(m.group(0))] + " ", t)
    t = _PUNCT_RE.sub(" ", t)
    t = _AND_RE.sub(r"\1 ", t)  # "two hundred and five" == "two hundred five"
    t = re.sub(r"(^|\s)'+|'+(?=\s|$)", " ", t)  # quotes, not apostrophes inside words
    return " ".join(t.split())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (unit costs) between two token sequences, one numpy row at a time."""
    if len(ref) == 0:
        return len(hyp)
    if len(hyp) == 0:
        return len(ref)
    vocab: dict = {}
    r = np.array([vocab.setdefault(t, len(vocab)) for t in ref])
    h = np.array([vocab.setdefault(t, len(vocab)) for t in hyp])
    prev = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        sub = prev[:-1] + (h != r[i - 1])
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(sub, prev[1:] + 1)
        # insertions depend on the row itself: a running minimum of (cur[j-1] + 1)
        cur = np.minimum.accumulate(cur - np.arange(len(cur))) + np.arange(len(cur))
        prev = cur
    return int(prev[-1])


def error_rate(ref: Sequence, hyp: Sequence) -> float:
    """Edits / reference length; an empty reference gives 0 for an empty hypothesis, else 1 per token."""
    if len(ref) == 0:
        return 0.0 if len(hyp) == 0 else float(len(hyp))
    return edit_distance(ref, hyp) / len(ref)


def wer(reference: str, hypothesis: str, normalize: bool = True) -> float:
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    return error_rate(reference.split(), hypothesis.split())


def cer(reference: str, hypothesis: str, normalize: bool = True) -> float:
    """Character error rate over the normalised text with spaces kept (a word boundary is a character)."""
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    return error_rate(list(reference), list(hypothesis))
