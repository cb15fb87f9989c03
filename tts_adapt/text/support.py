"""Which characters the English front end (espeak-ng, en-us) can read as the words they stand for.

espeak-ng does not refuse what it cannot read as English: an emoji becomes its Unicode name
("grinning face"), a CJK character becomes "chinese letter", and many symbols vanish without a trace.
Training on such a transcript teaches the model to say words that are not in the audio. A transcript
is readable when every character is a Latin letter (accents allowed), an ASCII digit, punctuation,
a currency or mathematical sign, a combining accent, white space, a format character (zero-width
joiner, soft hyphen) or the degree sign; everything else (emoji and other pictographs, letters of
other scripts, non-ASCII digits, control characters, private-use and unassigned code points) is not.
"""

from __future__ import annotations

import unicodedata

#: Symbols (category ``So``) with an ordinary English reading.
READABLE_SYMBOLS = frozenset("°")


def _readable(c: str) -> bool:
    if c.isascii():
        return c.isprintable() or c in "\t\n\r"
    cat = unicodedata.category(c)
    if cat.startswith("L"):
        return unicodedata.name(c, "").startswith("LATIN ")
    if cat.startswith("P") or cat in ("Sc", "Sm", "Sk", "Mn", "Me", "Zs", "Zl", "Zp", "Cf"):
        return True
    if cat == "Nd":
        return False  # digits of other scripts
    if cat in ("No", "Nl"):  # ½, ², Roman numerals: espeak-ng reads these
        return True
    return c in READABLE_SYMBOLS


def unsupported_characters(text: str) -> list[str]:
    """The distinct characters of ``text`` the front end cannot read, in order of appearance."""
    seen: dict[str, None] = {}
    for c in text:
        if c not in seen and not _readable(c):
            seen[c] = None
    return list(seen)


def describe_characters(chars: list[str], limit: int = 5) -> str:
    """``'😀' (U+1F600 GRINNING FACE), ...`` for an error message."""
    shown = [f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in chars[:limit]]
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return ", ".join(shown) + more
