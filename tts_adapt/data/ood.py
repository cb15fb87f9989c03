"""Out-of-distribution texts for the SLM-adversarial stage, in the official ``OOD_data`` list format.

The official ``Data/OOD_texts.txt`` holds one phonemised sentence per line, optionally with other
``|``-separated fields; ``meldataset.py`` takes the second field when the first names a ``.wav`` file
(``path|phonemes|speaker``) and the first field otherwise. The texts are already IPA phonemes: they go
through the symbol table, not the phonemiser. Only texts of at least ``min_length`` characters are drawn
(the config's ``data_params.min_length``, 50 officially).
"""

from __future__ import annotations

import os
from pathlib import Path


def read_ood_texts(path: str | os.PathLike, min_length: int = 50) -> list[str]:
    """The phoneme strings of an official ``OOD_data`` list that are at least ``min_length`` long."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise FileNotFoundError(f"out-of-distribution text list {path} cannot be read ({e})") from e
    lines = [line.rstrip("\r\n") for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"out-of-distribution text list {path} is empty")
    field = 1 if ".wav" in lines[0].split("|")[0] else 0  # decided once, from the first line, as officially
    texts = []
    for n, line in enumerate(lines, 1):
        parts = line.split("|")
        if len(parts) <= field:
            raise ValueError(
                f"{path}:{n}: expected 'path|phonemes|speaker' like the first line, got {line[:60]!r}"
            )
        texts.append(parts[field].strip())
    kept = [t for t in texts if len(t) >= min_length]
    if not kept:
        raise ValueError(
            f"{path}: none of its {len(texts)} texts has at least {min_length} characters "
            "(data_params.min_length)"
        )
    return kept
