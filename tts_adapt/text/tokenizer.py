"""Phoneme string -> token ids, one id per Unicode code point (no normalisation)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

from .symbols import START_ID, SYMBOL_TO_ID

log = logging.getLogger(__name__)


class Tokenizer:
    """Maps IPA strings to ids: the StyleTTS 2 symbol table, or a model's own (``table``, e.g. Kokoro's
    114-symbol vocabulary).

    Unknown code points are dropped, as the official cleaner does, but never silently: each call that
    drops something logs a warning naming the characters (or raises with ``strict=True``).
    """

    def __init__(
        self, strict: bool = False, table: dict[str, int] | None = None, name: str = "StyleTTS 2 symbol table"
    ) -> None:
        self.strict = strict
        self.table = SYMBOL_TO_ID if table is None else dict(table)
        self.name = name

    def unknown(self, text: str) -> list[str]:
        """Code points of ``text`` that are not in the symbol table, in order of first appearance."""
        seen: dict[str, None] = {}
        for ch in text:
            if ch not in self.table:
                seen[ch] = None
        return list(seen)

    def encode(self, text: str, add_start: bool = True, add_end: bool = False) -> list[int]:
        """Ids of ``text``; inference prepends id 0, training data also appends it."""
        missing = self.unknown(text)
        if missing:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)
            if self.strict:
                raise ValueError(f"text {text!r} has characters outside the {self.name}: {shown}")
            log.warning("dropping characters outside the %s: %s in %r", self.name, shown, text)
        ids = [self.table[ch] for ch in text if ch in self.table]
        if add_start:
            ids.insert(0, START_ID)
        if add_end:
            ids.append(START_ID)
        return ids

    def batch(self, texts: Iterable[str], add_start: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``[B, T]`` ids (pad 0) and ``[B]`` lengths."""
        seqs = [self.encode(t, add_start=add_start) for t in texts]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        out = torch.zeros(len(seqs), int(lengths.max()) if seqs else 0, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return out, lengths


def length_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Bool mask ``[B, T]`` that is True at padded positions (the official convention)."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) + 1 > lengths.unsqueeze(1)
