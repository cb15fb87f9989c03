"""Text -> token ids for one model, and long texts cut into pieces the model takes.

Two conventions share one path. The StyleTTS 2 notebook: espeak-ng IPA re-spaced by NLTK, the 178-symbol
table, a start token. Kokoro's runtimes: the same espeak-ng IPA as it comes, Kokoro's 114-symbol
vocabulary, a boundary token on both sides. A config says which (``text`` section, see
:func:`.config.text_settings`).

Characters the English front end cannot read (emoji, other scripts) are refused with their names:
espeak-ng would otherwise speak them as other words ("grinning face", "chinese letter").
A text longer than the model's context is split at sentence ends, then, for a sentence that alone is too
long, at the last word break that fits; a text that fits is phonemised whole, as the notebook does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...text import Tokenizer
from ...text.support import describe_characters, unsupported_characters
from . import config as C

_PHONEMIZERS: dict[bool, Any] = {}
_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+|\n+")


def _phonemizer(word_tokenize: bool):
    if word_tokenize not in _PHONEMIZERS:
        from ...text import Phonemizer

        _PHONEMIZERS[word_tokenize] = Phonemizer(word_tokenize=word_tokenize)
    return _PHONEMIZERS[word_tokenize]


@dataclass
class TextFrontend:
    """``vocab`` None means the StyleTTS 2 table; ``max_tokens`` counts the boundary tokens too."""

    vocab: dict[str, int] | None = None
    end_token: bool = False
    word_tokenize: bool = True
    max_tokens: int = 512

    @classmethod
    def for_config(cls, cfg: dict[str, Any], max_tokens: int) -> TextFrontend:
        s = C.text_settings(cfg)
        return cls(s["vocab"], s["end_token"], s["word_tokenize"], max_tokens)

    @classmethod
    def for_model(cls, model: Any) -> TextFrontend:
        return cls.for_config(model.config, model.bert.config.max_position_embeddings)

    @property
    def boundary_tokens(self) -> int:
        return 2 if self.end_token else 1

    def tokenizer(self) -> Tokenizer:
        if self.vocab is None:
            return Tokenizer()
        return Tokenizer(table=self.vocab, name="model's phoneme vocabulary")

    def check_text(self, text: str) -> None:
        if not text or not text.strip():
            raise ValueError("text is empty")
        bad = unsupported_characters(text)
        if bad:
            raise ValueError(
                f"text has characters the English front end cannot read: {describe_characters(bad)}; "
                "espeak-ng would speak them as other words. Remove them, or pass --phonemes"
            )

    def phonemize(self, text: str) -> str:
        self.check_text(text)
        return _phonemizer(self.word_tokenize)(text).strip()

    def encode(self, phonemes: str) -> list[int]:
        return self.tokenizer().encode(phonemes, add_start=True, add_end=self.end_token)

    def n_phoneme_tokens(self, ids: list[int]) -> int:
        """Tokens of the text itself (what a voice pack's row is chosen by)."""
        return len(ids) - self.boundary_tokens

    def fits(self, phonemes: str) -> bool:
        return len(self.encode(phonemes)) <= self.max_tokens

    def pieces(self, text: str | None, phonemes: str | None = None) -> list[list[int]]:
        """Token ids of ``text`` (or IPA ``phonemes``), as one piece if it fits, else split."""
        if phonemes is None:
            if text is None:
                raise ValueError("text is empty")
            whole = self.phonemize(text)
            if self.fits(whole):
                return [self.encode(whole)]
            sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
            parts = [self.phonemize(s) for s in sentences]
        else:
            if not phonemes.strip():
                raise ValueError("phonemes are empty")
            if self.fits(phonemes):
                return [self.encode(phonemes)]
            parts = [p for p in re.split(r"(?<=[.!?…;:])\s+", phonemes) if p.strip()]
        return [self.encode(p) for p in self._pack(parts)]

    def _pack(self, parts: list[str]) -> list[str]:
        """Join consecutive sentences while they fit; cut a sentence that alone does not."""
        out: list[str] = []
        for part in parts:
            for piece in self._cut(part):
                if out and self.fits(out[-1] + " " + piece):
                    out[-1] = out[-1] + " " + piece
                else:
                    out.append(piece)
        return out

    def _cut(self, phonemes: str) -> list[str]:
        budget = self.max_tokens - self.boundary_tokens
        pieces = []
        rest = phonemes.strip()
        while not self.fits(rest):
            window = rest[:budget]
            cut = max(window.rfind(", "), window.rfind(" "))
            cut = cut if cut > budget // 4 else budget  # no word break near the end: cut mid-word
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            pieces.append(rest)
        return pieces
