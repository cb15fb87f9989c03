"""Shared test fixtures: compatibility-fixture paths and one tiny model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("TTS_ADAPT_FIXTURES", REPO.parent / "shared" / "fixtures" / "styletts2"))

torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TTS_ADAPT_CACHE", str(REPO / ".cache" / "test-cache"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.exists():
        pytest.skip(f"compatibility fixtures not found at {FIXTURES} (set TTS_ADAPT_FIXTURES)")
    return FIXTURES
