"""Data-test fixtures: a small synthetic corpus (built once per session) and the paper's file lists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import REPO, missing_input

PAPER_SPLITS = Path(
    os.environ.get("TTS_ADAPT_PAPER_SPLITS", REPO.parent / "shared" / "data" / "paper_splits")
)


@pytest.fixture(scope="session")
def paper_splits_dir() -> Path:
    if not PAPER_SPLITS.is_dir():
        missing_input(f"paper splits not found at {PAPER_SPLITS} (set TTS_ADAPT_PAPER_SPLITS)")
    return PAPER_SPLITS
