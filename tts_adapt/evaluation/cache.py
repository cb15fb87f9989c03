"""Embedding cache keyed by audio content: in memory, and optionally as ``.npy`` files in a folder.

Evaluations compare one synthesised file against many references and re-run after small changes, so
the same audio is embedded again and again; the key is ``(backend id, hash of the decoded samples)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class EmbeddingCache:
    """``get``/``put`` of float32 vectors. ``directory=None`` keeps it in memory only."""

    def __init__(self, directory: str | os.PathLike | None = None, max_items: int = 100_000) -> None:
        self.directory = Path(directory) if directory else None
        self.max_items = max_items
        self._mem: dict[tuple[str, str], np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def _file(self, backend: str, key: str) -> Path:
        assert self.directory is not None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in backend)
        return self.directory / safe / key[:2] / f"{key}.npy"

    def get(self, backend: str, key: str) -> np.ndarray | None:
        vec = self._mem.get((backend, key))
        if vec is None and self.directory is not None:
            f = self._file(backend, key)
            if f.exists():
                try:
                    vec = np.load(f, allow_pickle=False)
                except (OSError, ValueError):
                    vec = None  # a damaged entry is recomputed, not trusted
                if vec is not None:
                    self._remember(backend, key, vec)
        if vec is None:
            self.misses += 1
        else:
            self.hits += 1
        return vec

    def put(self, backend: str, key: str, vec: np.ndarray) -> None:
        vec = np.asarray(vec, dtype=np.float32)
        self._remember(backend, key, vec)
        if self.directory is not None:
            from ..utils.io import atomic_path

            f = self._file(backend, key)
            with atomic_path(f, suffix=".npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, vec, allow_pickle=False)

    def _remember(self, backend: str, key: str, vec: np.ndarray) -> None:
        if len(self._mem) >= self.max_items:
            self._mem.pop(next(iter(self._mem)))
        self._mem[(backend, key)] = vec

    def __len__(self) -> int:
        return len(self._mem)
