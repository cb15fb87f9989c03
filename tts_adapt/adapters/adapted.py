"""Open an adapted-model folder on top of the pre-trained model, ready for inference."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .io import CONFIG_NAME, load_adapter
from .merge import merge_lora

ADAPTER_SUBDIR = "adapter"


def find_adapter(path: str | os.PathLike) -> Path:
    """The LoRA adapter folder inside an adapted-model folder: ``path`` itself or ``path/adapter``."""
    root = Path(path)
    for candidate in (root, root / ADAPTER_SUBDIR):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"no LoRA adapter in {root}: expected {root / CONFIG_NAME} or {root / ADAPTER_SUBDIR / CONFIG_NAME}"
    )


def load_adapted(model: nn.Module, path: str | os.PathLike, merge: bool = True) -> nn.Module:
    """Load the adapter of an adapted-model folder into ``model`` and (by default) merge it.

    Merging folds ``ΔW`` into the base weights (weight-norm aware) and removes the LoRA wrappers, so
    inference costs exactly what the original model costs. Returns ``model``.
    """
    load_adapter(model, find_adapter(path))
    if merge:
        merge_lora(model)
    return model
