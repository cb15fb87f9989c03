"""Trainer fixtures: a seeded micro StyleTTS 2 saved as an official checkpoint, and tiny target sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tts_adapt.models.styletts2 import load_official, save_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG, load_config
from tts_adapt.train import TrainConfig


@pytest.fixture(scope="session")
def micro_base(tmp_path_factory) -> tuple[Path, dict]:
    """(checkpoint path, config dict) of a randomly initialised micro model (seed 0)."""
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("micro") / "micro.pth"
    save_official(build_model(MICRO_CONFIG), path)
    return path, load_config(MICRO_CONFIG)


@pytest.fixture
def fresh_model(micro_base):
    """A new micro model loaded from the base checkpoint (each test mutates its own)."""
    path, config = micro_base
    return lambda: load_official(path, config)


@pytest.fixture(scope="session")
def golden_a(fixtures_dir):
    return torch.load(fixtures_dir / "checkpoint_set" / "tiny_golden.pt", weights_only=True)


@pytest.fixture(scope="session")
def target_items(prepared_synthetic):
    """Two utterances of one speaker: with batch size 2 every step sees the same batch."""
    speaker = sorted({it.speaker for it in prepared_synthetic.items})[0]
    return [it for it in prepared_synthetic.items if it.speaker == speaker][:2]


def quick_config(**kw) -> TrainConfig:
    """Small, fast settings: shortest decoder crop, no dropout (deterministic), no sampling."""
    base = dict(
        steps=3,
        batch_size=2,
        max_len=80,
        log_every=1,
        save_every=1000,
        sample_every=10**6,
        dropout=False,
        lr=1e-3,
        ft_lr=1e-3,
        bert_lr=1e-4,
    )
    base.update(kw)
    return TrainConfig(**base)
