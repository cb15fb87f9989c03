"""Data-test fixtures: a small synthetic corpus (built once per session) and the paper's file lists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ..conftest import REPO

PAPER_SPLITS = Path(
    os.environ.get("TTS_ADAPT_PAPER_SPLITS", REPO.parent / "shared" / "data" / "paper_splits")
)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """6 espeak-ng speakers x 5 utterances in the LibriTTS layout (seconds to build)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from tts_adapt.data.synthetic import make_corpus

    return make_corpus(tmp_path_factory.mktemp("synthetic") / "corpus", 6, 5, seed=0, progress=False)


@pytest.fixture(scope="session")
def prepared_synthetic(synthetic_corpus, tmp_path_factory):
    """The synthetic corpus prepared once (features cached in a session folder)."""
    from tts_adapt.data import FeatureCache, load_corpus, prepare_corpus

    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    return prepare_corpus(load_corpus(synthetic_corpus), cache=cache, progress=False)


@pytest.fixture(scope="session")
def paper_splits_dir() -> Path:
    if not PAPER_SPLITS.is_dir():
        pytest.skip(f"paper splits not found at {PAPER_SPLITS} (set TTS_ADAPT_PAPER_SPLITS)")
    return PAPER_SPLITS
