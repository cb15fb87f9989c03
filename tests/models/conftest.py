"""Golden-set fixtures for the StyleTTS 2 tests, loaded once per session; the tiny model has ~145 M params."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tts_adapt.models.styletts2 import MODULE_NAMES, build_model, load_official
from tts_adapt.models.styletts2.config import load_config

# DataParallel wrapped every module but these three in the official second stage.
UNPREFIXED = ("mpd", "msd", "wd")


def official_format(state_by_module: dict[str, dict[str, torch.Tensor]], prefixed: bool = True) -> dict:
    """What ``train_second.py`` writes: ``module.`` on all keys except mpd/msd/wd (written here by hand,
    independently of our own ``save_official``, so the two check each other)."""
    net = {}
    for name, sd in state_by_module.items():
        add = prefixed and name not in UNPREFIXED
        net[name] = {("module." + k if add else k): v for k, v in sd.items()}
    return {"net": net, "optimizer": [], "iters": 0, "val_loss": 0.0, "epoch": 0}


@pytest.fixture(scope="session")
def set_a(fixtures_dir: Path) -> Path:
    return fixtures_dir / "checkpoint_set"


@pytest.fixture(scope="session")
def set_b(fixtures_dir: Path) -> Path:
    return fixtures_dir / "fill_set"


@pytest.fixture(scope="session")
def golden_a(set_a: Path) -> dict:
    return torch.load(set_a / "tiny_golden.pt", weights_only=True)


@pytest.fixture(scope="session")
def golden_b(set_b: Path) -> dict:
    return torch.load(set_b / "tiny_golden.pt", weights_only=True)


@pytest.fixture(scope="session")
def model_a(set_a: Path):
    """Set A's official-format checkpoint loaded with our strict loader."""
    return load_official(set_a / "tiny_epochs_2nd.pth", set_a / "tiny_config.yml")


def load_fill(set_b: Path):
    spec = importlib.util.spec_from_file_location("styletts2_fill", set_b / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filled_checkpoint(config_path: Path, fill_py_dir: Path, out: Path) -> Path:
    """Weights rebuilt from our keys alone by ``fill.py``, written in the official format."""
    fill = load_fill(fill_py_dir)
    model = build_model(load_config(config_path))
    states = {name: fill.fill_state_dict(name, getattr(model, name).state_dict()) for name in MODULE_NAMES}
    torch.save(official_format(states), out)
    return out


@pytest.fixture(scope="session")
def model_b(set_b: Path, tmp_path_factory: pytest.TempPathFactory):
    ckpt = filled_checkpoint(set_b / "tiny_config.yml", set_b, tmp_path_factory.mktemp("fill") / "filled.pth")
    return load_official(ckpt, set_b / "tiny_config.yml")
