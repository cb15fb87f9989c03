"""Speaker adaptation: the StyleTTS 2 fine-tuning objective, methods (full, linear, LoRA, +prior), trainer.

Exports load on first use, so ``tts_adapt.train.config`` (needed to build the command line) does not
pull in torch, peft and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "METHODS": "config",
    "ConfigError": "config",
    "TrainConfig": "config",
    "from_official": "config",
    "validate": "config",
    "FineTuneObjective": "objective",
    "LossWeights": "objective",
    "load_adapted_model": "artifacts",
    "read_manifest": "artifacts",
    "run_adaptation": "run",
    "BaseMismatchError": "provenance",
    "check_base": "provenance",
    "weights_sha256": "provenance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tts_adapt.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
