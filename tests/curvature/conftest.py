"""A micro StyleTTS 2 (about 7 M parameters) as an official-format checkpoint, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tts_adapt

MICRO_CONFIG = Path(tts_adapt.__file__).resolve().parent / "assets" / "micro_config.yml"


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    """``(checkpoint, config)``: random weights in the layout ``train_second.py`` writes."""
    from tts_adapt.models.styletts2 import MODULE_NAMES, build_model

    torch.manual_seed(0)
    model = build_model(MICRO_CONFIG)
    path = tmp_path_factory.mktemp("micro") / "epochs_2nd_00000.pth"
    torch.save(
        {
            "net": {n: getattr(model, n).state_dict() for n in MODULE_NAMES},
            "optimizer": [],
            "iters": 0,
            "val_loss": 0.0,
            "epoch": 0,
        },
        path,
    )
    return path, MICRO_CONFIG


@pytest.fixture(scope="session")
def micro_model(micro_checkpoint):
    from tts_adapt.models.styletts2 import load_official

    return load_official(*micro_checkpoint).eval()
