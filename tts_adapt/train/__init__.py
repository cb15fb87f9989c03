"""Speaker adaptation: the StyleTTS 2 fine-tuning objective, methods (full, linear, LoRA, +prior), trainer.

Exports load on first use, so ``tts_adapt.train.config`` (needed to build the command line) does not
pull in torch, peft and transformers.
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "METHODS": "config",
    "ConfigError": "config",
    "TrainConfig": "config",
    "from_official": "config",
    "validate": "config",
    "FineTuneObjective": "objective",
    "LossWeights": "objective",
    "load_adapted_model": "artifacts",
    "read_manifest": "manifest",
    "run_adaptation": "run",
    "BaseMismatchError": "provenance",
    "check_base": "provenance",
    "weights_sha256": "provenance",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
