"""Spelled-out English numbers to digits, the canonical form WER compares.

Recognisers write most numbers as digits and reference texts mix both forms ("292", "two hundred and
ninety two", LibriTTS's normalised "eighteen sixty"), so both sides are rewritten to digits:

* cardinals with ``hundred``/``thousand``/``million``/``billion`` and an optional ``and``
  ("two hundred and five" -> ``205``, "a thousand" -> ``1000``, "twenty five hundred" -> ``2500``);
* ordinals keep their suffix ("twenty first" -> ``21st``, matching a written ``21st``);
* decimals ("three point one four" -> ``3.14``), decades ("nineties" -> ``90s``);
* years read in pairs: a group 11..20 followed by a group 10..99 or "oh N" is one number
  ("nineteen ninety nine" -> ``1999``, "twenty twenty four" -> ``2024``, "nineteen oh five" -> ``1905``);
* a digit string before a scale word ("5 million" -> ``5000000``).

Digits said one by one ("one two three") stay separate numbers (``1 2 3``). A time said as two groups
("eleven fifteen") reads as a year; write times with a colon in reference texts (``11:15`` -> ``11 15``).
"""

from __future__ import annotations

import re
from decimal import Decimal

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split()
)
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def ordinal_word(cardinal: str) -> str:
    """``twenty`` -> ``twentieth``, ``three`` -> ``third``: the ordinal of one cardinal word."""
    if cardinal in _IRREGULAR_ORDINALS:
        return _IRREGULAR_ORDINALS[cardinal]
    return cardinal[:-1] + "ieth" if cardinal.endswith("y") else cardinal + "th"


UNIT_VALUE = {w: i for i, w in enumerate(ONES)}
TENS_VALUE = {w: 10 * i for i, w in enumerate(TENS) if i >= 2}
DECADES = {w[:-1] + "ies": v for w, v in TENS_VALUE.items()}  # "nineties" -> 90
ORDINAL_TO_CARDINAL = {ordinal_word(w): w for w in [*ONES[1:], *TENS[2:], "hundred", *SCALES]}
_DIGITS_RE = re.compile(r"^\d+(?:\.\d+)?$")


def ordinal_suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


class _Number:
    """A number being read word by word: ``total`` (thousands and up) + ``current`` (below)."""

    def __init__(self) -> None:
        self.total = 0
        self.current = 0
        self.last: str | None = None  # unit, teen, tens, hundred, scale
        self.last_scale = 10**12
        self.words = 0

    def step(self, w: str) -> bool:
        """Take cardinal word ``w`` if it continues this number; ``False`` leaves it for the next."""
        started = self.last is not None
        if w in UNIT_VALUE:
            v = UNIT_VALUE[w]
            kind = "unit" if v < 10 else "teen"
            if not started:
                self.current = v
            elif v == 0:
                return False
            elif self.last == "tens" and v < 10:
                self.current += v
            elif self.last in ("hundred", "scale"):
                self.current += v
            else:
                return False
            self.last = kind
        elif w in TENS_VALUE:
            if not started:
                self.current = TENS_VALUE[w]
            elif self.last in ("hundred", "scale") and self.current % 100 == 0:
                self.current += TENS_VALUE[w]
            else:
                return False
            self.last = "tens"
        elif w == "hundred":
            if not started or self.last in ("hundred", "scale") or not 0 < self.current < 100:
                return False
            self.current *= 100
            self.last = "hundred"
        elif w in SCALES:
            s = SCALES[w]
            if not started or self.last == "scale" or s >= self.last_scale or self.current == 0:
                return False
            self.total += self.current * s
            self.current = 0
            self.last, self.last_scale = "scale", s
        else:
            return False
        self.words += 1
        return True

    def continues(self, w: str) -> bool:
        """Whether ``w`` would continue this number (a trial step on a copy)."""
        trial = _Number()
        trial.__dict__.update(self.__dict__)
        return trial.step(w)

    @property
    def value(self) -> int:
        return self.total + self.current

    @property
    def is_pair(self) -> bool:
        """A bare group of one or two words below 100 (half of a year said in pairs)."""
        return self.total == 0 and self.last in ("unit", "teen", "tens") and self.value < 100


def _is_cardinal_start(w: str) -> bool:
    return w in UNIT_VALUE or w in TENS_VALUE


def _read(tokens: list[str], i: int) -> tuple[int, str, bool]:
    """Read one number at ``tokens[i]``: (index after it, its text, whether it is a year half)."""
    n = len(tokens)
    w = tokens[i]
    if _DIGITS_RE.match(w) and i + 1 < n and (tokens[i + 1] in SCALES or tokens[i + 1] == "hundred"):
        scale = SCALES.get(tokens[i + 1], 100)
        v = Decimal(w) * scale
        return i + 2, str(int(v)) if v == v.to_integral_value() else str(v.normalize()), False
    if w in DECADES:
        return i + 1, f"{DECADES[w]}s", False
    num = _Number()
    j = i
    if w == "a" and i + 1 < n and (tokens[i + 1] == "hundred" or tokens[i + 1] in SCALES):
        num.current, num.last = 1, "unit"
        j = i + 1
    while j < n:
        t = tokens[j]
        if t == "and" and num.last in ("hundred", "scale") and j + 1 < n:
            nxt = ORDINAL_TO_CARDINAL.get(tokens[j + 1], tokens[j + 1])
            if not _is_cardinal_start(nxt) or nxt == "zero" or not _Number.continues(num, nxt):
                break
            j += 1  # "two hundred and five": the "and" belongs to the number
            continue
        if t in ORDINAL_TO_CARDINAL:
            if num.step(ORDINAL_TO_CARDINAL[t]):
                v = num.value
                return j + 1, f"{v}{ordinal_suffix(v)}", False
            break
        if not num.step(t):
            break
        j += 1
    if num.last is None or (w == "a" and num.words == 0):
        return i, w, False
    text = str(num.value)
    if j + 1 < n and tokens[j] == "point" and tokens[j + 1] in UNIT_VALUE and UNIT_VALUE[tokens[j + 1]] < 10:
        digits = []
        k = j + 1
        while k < n and tokens[k] in UNIT_VALUE and UNIT_VALUE[tokens[k]] < 10:
            digits.append(str(UNIT_VALUE[tokens[k]]))
            k += 1
        return k, text + "." + "".join(digits), False
    if j < n and tokens[j] in DECADES and num.is_pair and 11 <= num.value <= 20:
        return j + 1, f"{num.value}{DECADES[tokens[j]]}s", False  # "nineteen nineties"
    return j, text, num.is_pair


def words_to_digits(tokens: list[str]) -> list[str]:
    """``tokens`` with every spelled number replaced by its digits (see the module docstring)."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(tokens):
        j, text, pair = _read(tokens, i)
        if j == i:
            out.append((tokens[i], False))
            i += 1
            continue
        prev = out[-1] if out else None
        if prev and prev[1] and 11 <= int(prev[0]) <= 20:
            if pair and int(text) >= 10:  # "nineteen" + "ninety nine"
                out[-1] = (prev[0] + text, False)
                i = j
                continue
        if text.isdigit() and prev and prev[0] == "oh" and len(out) >= 2:  # "nineteen oh five"
            before = out[-2]
            if before[1] and 11 <= int(before[0]) <= 20 and pair and int(text) < 10:
                out[-2:] = [(f"{before[0]}0{text}", False)]
                i = j
                continue
        out.append((text, pair))
        i = j
    return [t for t, _ in out]
