"""Shared test fixtures: compatibility-fixture paths and one tiny model per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("TTS_ADAPT_FIXTURES", REPO.parent / "shared" / "fixtures" / "styletts2"))

torch.set_num_threads(int(os.environ.get("TTS_ADAPT_TEST_THREADS", max(1, min(4, os.cpu_count() or 1)))))


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TTS_ADAPT_CACHE", str(REPO / ".cache" / "test-cache"))
    # commands without --model use the small shipped model in tests (fast); Kokoro's tests name it
    os.environ.setdefault("TTS_ADAPT_MODEL", "tts-adapt-base")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say why tests were skipped, grouped, after the count: a bare "76 skipped" hides that they
    need the compatibility fixtures (and where they were looked for)."""
    from collections import Counter

    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("why tests were skipped")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"{count:5d}  {reason}")


def missing_input(message: str) -> None:
    """Skip a test whose shared input is absent; under ``CI=true`` that is a failure, not a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.exists():
        missing_input(
            f"compatibility fixtures (official StyleTTS 2 outputs) not found at {FIXTURES}: set "
            "TTS_ADAPT_FIXTURES to the folder that holds them (docs/DEVELOPING.md)"
        )
    return FIXTURES


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
def kokoro_paths():
    """Kokoro-82M's (weights, config), from the installed weight packages (converted once per cache)."""
    from tts_adapt.models.kokoro import INSTALL_HINT, kokoro_paths, parts_installed

    if not parts_installed():
        missing_input(f"Kokoro-82M's weight packages are not installed ({INSTALL_HINT})")
    return kokoro_paths()


@pytest.fixture(scope="session")
def kokoro_model(kokoro_paths):
    """The real Kokoro-82M in our modules, eval mode (82 M parameters: built once per session)."""
    from tts_adapt.models.styletts2 import load_official

    return load_official(*kokoro_paths).eval()


def kokoro_voice_run(kokoro_paths, out, start: str = "am_michael", name: str = "target", span: float = 0.1):
    """An adapted Kokoro folder as method ``voice`` leaves it, written by the trainer's own writer: the
    stock packs plus a learned voice (``start``'s pack shifted by a known offset, ``linspace(-span,
    span)``), no weights, a manifest naming the base by sha256 and the start voice. Returns the folder and
    the model that wrote it (a fresh copy: the session's ``kokoro_model`` stays intact)."""
    import torch

    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.train.artifacts import export_adapted
    from tts_adapt.train.provenance import sha256_file

    model = load_official(*kokoro_paths).eval()
    learned = model.voices.add_learned(name, model.voices.packs()[start])
    with torch.no_grad():
        learned.offset.copy_(torch.linspace(-span, span, learned.offset.numel()))
    manifest = {
        "method": "voice",
        "train_config": {"voice_init": start},
        "base": {"checkpoint": str(kokoro_paths[0]), "sha256": sha256_file(kokoro_paths[0])},
    }
    return export_adapted(model, out, "voice", model.config, None, manifest), model
