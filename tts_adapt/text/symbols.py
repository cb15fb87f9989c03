"""The StyleTTS 2 symbol table: 178 entries, index = token id.

The table is the concatenation of four groups. The apostrophe appears twice (ids 174 and 176); the
official lookup table is built by iterating in order, so the character maps to its *last* id (176).
"""

from __future__ import annotations

PAD = "$"
PUNCTUATION = ';:,.!?¡¿—…"«»“” '
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LETTERS_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
    "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"
)

SYMBOLS: list[str] = [PAD, *PUNCTUATION, *LETTERS, *LETTERS_IPA]
PAD_ID = 0
START_ID = 0
NUM_SYMBOLS = len(SYMBOLS)

# Later duplicates win, exactly like a dict filled in table order.
SYMBOL_TO_ID: dict[str, int] = {}
for _i, _s in enumerate(SYMBOLS):
    SYMBOL_TO_ID[_s] = _i
del _i, _s
