"""A seeded generator of varied English sentences for the synthetic corpus.

Templates with slots filled from small word lists give many distinct sentences with broad phoneme
coverage. Numbers appear as digits in the "original" text and spelled out in the "normalised" one,
as LibriTTS ships both forms.
"""

from __future__ import annotations

import re

import numpy as np

NAMES = [
    "Alice",
    "Bernard",
    "Clara",
    "Dmitri",
    "Eleanor",
    "Farid",
    "Grace",
    "Hugo",
    "Ingrid",
    "Jonah",
    "Keiko",
    "Lionel",
    "Marta",
    "Nadia",
    "Oscar",
    "Priya",
    "Quentin",
    "Rosa",
    "Samuel",
    "Theo",
    "Ursula",
    "Victor",
    "Wanda",
    "Xavier",
    "Yusuf",
    "Zoe",
]
ADJECTIVES = [
    "ancient",
    "bright",
    "careful",
    "dusty",
    "eager",
    "frozen",
    "gentle",
    "hollow",
    "idle",
    "jagged",
    "quiet",
    "lively",
    "muddy",
    "narrow",
    "odd",
    "pale",
    "restless",
    "shallow",
    "tidy",
    "urgent",
    "vivid",
    "weary",
    "yellow",
    "zealous",
    "brave",
    "crooked",
    "distant",
    "golden",
    "humble",
    "lonely",
    "crimson",
    "thick",
    "smooth",
    "strange",
    "warm",
    "bitter",
    "cheerful",
    "silver",
    "heavy",
    "famous",
]
NOUNS = [
    "lantern",
    "harbour",
    "orchard",
    "violin",
    "garden",
    "kettle",
    "river",
    "village",
    "window",
    "bridge",
    "teacher",
    "sailor",
    "merchant",
    "doctor",
    "farmer",
    "painter",
    "captain",
    "letter",
    "journey",
    "market",
    "mountain",
    "engine",
    "basket",
    "blanket",
    "chimney",
    "compass",
    "desert",
    "forest",
    "island",
    "meadow",
    "pebble",
    "puzzle",
    "ribbon",
    "saddle",
    "thunder",
    "valley",
    "whistle",
    "workshop",
    "library",
    "carriage",
    "fountain",
    "kitchen",
    "lighthouse",
    "notebook",
    "pianist",
    "shepherd",
    "telescope",
    "umbrella",
    "wagon",
]
VERBS_PAST = [
    "admired",
    "borrowed",
    "carried",
    "described",
    "examined",
    "followed",
    "gathered",
    "hid",
    "imagined",
    "joined",
    "kept",
    "lifted",
    "mended",
    "noticed",
    "opened",
    "painted",
    "questioned",
    "repaired",
    "searched",
    "thanked",
    "visited",
    "washed",
    "watched",
    "wrapped",
    "chased",
    "guarded",
    "measured",
    "praised",
    "ignored",
    "remembered",
]
PLACES = [
    "by the old harbour",
    "near the railway station",
    "behind the church",
    "across the valley",
    "under the bridge",
    "at the edge of the forest",
    "inside the workshop",
    "on the northern road",
    "beside the frozen lake",
    "along the crowded street",
    "in the back of the shop",
    "on top of the hill",
]
TIMES = [
    "yesterday",
    "this morning",
    "last winter",
    "after supper",
    "before dawn",
    "on Sunday",
    "late at night",
    "during the storm",
    "every autumn",
    "at noon",
    "two weeks ago",
    "that evening",
]
ADVERBS = ["slowly", "quietly", "proudly", "suddenly", "carefully", "nervously", "gladly", "boldly", "rarely"]
UNITS = ["miles", "apples", "pages", "coins", "minutes", "letters", "steps", "pounds", "houses", "songs"]

TEMPLATES = [
    "{Name} {verb} the {adj} {noun} {place}.",
    "The {adj} {noun} was {adverb} {verb} by {name} {time}.",
    "Why did {name} leave the {noun} {place}?",
    "{Time}, {name} counted {num} {unit} and then {verb} the {noun}.",
    "If the {noun} is {adj}, {name} will not stay for long.",
    "We {verb} a {adj} {noun} and {num} {unit} {place}.",
    "{Name} said that the {noun} looked {adj} {time}.",
    "There were {num} {unit} in the {adj} {noun}, or so {name} claimed.",
    "Nobody {verb} the {noun} until {name} arrived with a {adj} {noun2}.",
    "At {hour} o'clock the {noun} {verb} the {adj} {noun2} {place}.",
    "Is it true that {name} {verb} {num} {unit} {time}?",
    "How {adj} the {noun} seemed when {name} {verb} it!",
    "The {noun} and the {noun2} were both {adj}, {adverb} {verb} by {name}.",
    "{Name} wrote {num} {unit} about the {adj} {noun} {place}.",
]

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell_number(n: int) -> str:
    """English words for 0 <= n < 1000 ("three hundred and forty two")."""
    if not 0 <= n < 1000:
        raise ValueError(f"spell_number handles 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + spell_number(rest))


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[int(rng.integers(len(words)))]


def make_sentence(rng: np.random.Generator) -> tuple[str, str]:
    """``(original, normalised)``: identical except numbers (digits vs words)."""
    template = _pick(rng, TEMPLATES)
    noun = _pick(rng, NOUNS)
    noun2 = _pick(rng, [n for n in NOUNS if n != noun])
    num = int(rng.integers(2, 400))
    hour = int(rng.integers(1, 13))
    name = _pick(rng, NAMES)
    time = _pick(rng, TIMES)
    slots = dict(
        name=name,
        Name=name,
        adj=_pick(rng, ADJECTIVES),
        noun=noun,
        noun2=noun2,
        verb=_pick(rng, VERBS_PAST),
        place=_pick(rng, PLACES),
        time=time,
        Time=time[0].upper() + time[1:],
        adverb=_pick(rng, ADVERBS),
        unit=_pick(rng, UNITS),
    )
    original = _articles(template.format(num=num, hour=hour, **slots))
    normalised = _articles(template.format(num=spell_number(num), hour=spell_number(hour), **slots))
    return original, normalised


def _articles(text: str) -> str:
    """ "a" becomes "an" before a vowel."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


def make_sentences(n: int, seed: int | list[int]) -> list[tuple[str, str]]:
    """``n`` distinct sentence pairs from ``seed`` (an int or a list of ints; deterministic)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise RuntimeError(f"could not make {n} distinct sentences")
        pair = make_sentence(rng)
        if pair[1] not in seen:
            seen.add(pair[1])
            out.append(pair)
    return out
