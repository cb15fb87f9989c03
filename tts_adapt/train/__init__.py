"""Speaker adaptation: the StyleTTS 2 fine-tuning objective, methods (full, linear, LoRA, +prior), trainer."""

from .artifacts import load_adapted_model, read_manifest
from .config import METHODS, ConfigError, TrainConfig, from_official, validate
from .objective import FineTuneObjective, LossWeights
from .run import run_adaptation

__all__ = [
    "METHODS",
    "ConfigError",
    "FineTuneObjective",
    "LossWeights",
    "TrainConfig",
    "from_official",
    "load_adapted_model",
    "read_manifest",
    "run_adaptation",
    "validate",
]
