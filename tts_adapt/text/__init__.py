"""Text front end: symbol table, tokeniser and cached phonemiser."""

from .phonemize import Phonemizer
from .symbols import NUM_SYMBOLS, PAD_ID, SYMBOL_TO_ID, SYMBOLS
from .tokenizer import Tokenizer, length_to_mask

__all__ = ["NUM_SYMBOLS", "PAD_ID", "SYMBOLS", "SYMBOL_TO_ID", "Phonemizer", "Tokenizer", "length_to_mask"]
