"""English text normalisation and edit-distance error rates (WER, CER, PER).

WER depends as much on normalisation as on the recogniser, so both sides go through the same
normaliser. It follows the conventions of Whisper's English normaliser (our own implementation, with
our own tables), in this order:

1. Unicode NFKC, lower case; curly quotes unified; accents removed (``café`` -> ``cafe``);
2. annotations in square or angle brackets removed (``[laughter]``, ``<unk>``); round brackets are kept
   as text, since a TTS reference's parenthesis is spoken;
3. contractions expanded where the expansion is unambiguous (``won't`` -> ``will not``, ``can't`` ->
   ``can not``, ``n't``/``'re``/``'ll``/``'ve``/``'m``/``'d``; ``'s`` stays: "is", "has" or possessive);
   informal ``gonna``/``wanna``/``gotta``; titles (``Mr``/``Mrs``/``Ms``/``Dr``/``Prof``);
   dotted initialisms joined (``U.S.A.`` -> ``usa``, ``p.m.`` -> ``pm``);
4. symbols spoken: ``%`` ``&`` ``@``, currency (``$5`` -> ``5 dollars``, ``$5.50`` -> ``5 dollars 50
   cents`` = ``five dollars and fifty cents``, ``£``/``€`` likewise), ``per cent`` -> ``percent``;
5. hyphens and dashes split words; punctuation removed except apostrophes inside words and the point
   of a decimal;
6. numbers to digits (``spoken_numbers``): ``two hundred and ninety two`` = ``292``, ``21st``,
   ``3.5``, years read in pairs; thousands separators dropped (``3,500`` -> ``3500``); clock times
   ``10:30`` and ``at 10.30`` (a point after at/by/from/until/before/after/around/past) -> ``10 30``;
7. hesitations removed (``um``, ``uh``, ``hmm``, ``mm``, ``mhm``, ``erm``, ...);
8. British spellings to American (``spelling_variants``): ``colour``, ``realise``, ``centre``,
   ``travelled``, ``grey``...; a number's currency word made plural (``1 dollar`` = ``$1``).

Not handled: compounds written as one word or two (``riverbank`` / ``river bank``), which need a
dictionary, and ``'s`` (ambiguous). ``TEXT_NORM_VERSION`` changes whenever the output may change, so
scores computed with an older normaliser are not reused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from .spelling_variants import americanise
from .spoken_numbers import words_to_digits

TEXT_NORM_VERSION = 3

_ANNOTATION_RE = re.compile(r"\[[^\]]*\]|<[^>]*>")
_LETTER_MAP = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ß": "ss"}
)
_WHOLE_WORDS = [
    (r"won't", "will not"),
    (r"can't", "can not"),
    (r"cannot", "can not"),
    (r"shan't", "shall not"),
    (r"ain't", "aint"),
    (r"let's", "let us"),
    (r"y'all", "you all"),
    (r"ma'am", "madam"),
    (r"gonna", "going to"),
    (r"wanna", "want to"),
    (r"gotta", "got to"),
    (r"gimme", "give me"),
    (r"mr\.?", "mister"),
    (r"mrs\.?", "missus"),
    (r"ms\.?", "miss"),
    (r"dr\.?", "doctor"),
    (r"prof\.?", "professor"),
    (r"per cent", "percent"),
]
_WHOLE_WORD_RES = [(re.compile(rf"\b{a}(?![\w'])"), b) for a, b in _WHOLE_WORDS]
_SUFFIXES = [
    (r"'d (been|gone|done|had|got)\b", r" had \1"),
    (r"'s (been|gone|got)\b", r" has \1"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'ll\b", " will"),
    (r"'ve\b", " have"),
    (r"'m\b", " am"),
    (r"'d\b", " would"),
]
_SUFFIX_RES = [(re.compile(a), b) for a, b in _SUFFIXES]
_INITIALISM_RE = re.compile(r"\b(?:[a-z]\.){2,}")
_CURRENCY = {"$": ("dollars", "cents"), "£": ("pounds", "pence"), "€": ("euros", "cents")}
_CURRENCY_RE = re.compile(r"([$£€])\s?(\d+(?:,\d{3})*)(?:\.(\d{2}))?\b")
_CLOCK_RE = re.compile(r"\b([01]?\d|2[0-4]):([0-5]\d)\b")
# a time written with a point, as Whisper often does ("starts at 10.30"), told from a decimal by its word
_DOTTED_CLOCK_RE = re.compile(
    r"\b(at|by|from|until|till|before|after|around|past)\s+([01]?\d|2[0-4])\.([0-5]\d)\b"
)
_PLURAL_UNITS = {"dollar": "dollars", "pound": "pounds", "euro": "euros", "cent": "cents"}
_MINOR_AFTER = {major: minor for major, minor in _CURRENCY.values()}
_PUNCT_RE = re.compile(r"[^\w\s'.]|_")
FILLERS = frozenset({"um", "uh", "uhm", "erm", "hmm", "hm", "mm", "mmm", "mhm"})


def _currency(m: re.Match) -> str:
    major, minor = _CURRENCY[m.group(1)]
    text = f" {m.group(2)} {major} "
    if m.group(3) and int(m.group(3)):
        text += f"{int(m.group(3))} {minor} "
    return text


def _strip_accents(t: str) -> str:
    t = unicodedata.normalize("NFKD", t.translate(_LETTER_MAP))
    return "".join(c for c in t if not unicodedata.combining(c))


def normalize_text(text: str) -> str:
    """Normalised lower-case words separated by single spaces (see module docstring)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").replace("\u02bc", "'")
    t = _strip_accents(t)
    t = _ANNOTATION_RE.sub(" ", t)
    for rx, sub in _WHOLE_WORD_RES:
        t = rx.sub(sub, t)
    for rx, sub in _SUFFIX_RES:
        t = rx.sub(sub, t)
    t = _INITIALISM_RE.sub(lambda m: m.group(0).replace(".", "") + " ", t)
    t = _CURRENCY_RE.sub(_currency, t)
    t = t.replace("%", " percent ").replace("&", " and ").replace("@", " at ")
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 3,500 -> 3500
    t = _CLOCK_RE.sub(r"\1 \2", t)  # 10:30 -> 10 30
    t = _DOTTED_CLOCK_RE.sub(r"\1 \2 \3", t)  # at 10.30 -> at 10 30
    t = re.sub(r"[\u2010-\u2015-]", " ", t)
    t = _PUNCT_RE.sub(" ", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)  # full stops go, a decimal point stays
    t = re.sub(r"(^|\s)'+|'+(?=\s|$)", " ", t)  # quotes, not apostrophes inside words
    t = re.sub(r"(?<=\d)(?=[a-z])(?!(?:st|nd|rd|th|s)\b)", " ", t)  # 5pm -> 5 pm, not 21st or 1990s
    words = words_to_digits(t.split())
    out: list[str] = []
    for i, w in enumerate(words):
        if w in FILLERS:
            continue
        if w == "and" and out and out[-1] in _MINOR_AFTER and i + 2 < len(words):
            if words[i + 1][:1].isdigit() and words[i + 2] == _MINOR_AFTER[out[-1]]:
                continue  # "5 dollars and 50 cents" = "$5.50"
        if w in _PLURAL_UNITS and out and out[-1][:1].isdigit():
            w = _PLURAL_UNITS[w]
        out.append(americanise(w))
    return " ".join(out)


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
