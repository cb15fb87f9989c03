"""Our StyleTTS 2: one component per file, official module names and state-dict keys.

Public API: :func:`build_model` (random init from an official ``config.yml``), :func:`load_official`
(strict loading of the official checkpoint) and :class:`StyleTTS2` (``synthesize``, ``sample_style``).
"""

from .checkpoint import CheckpointMismatchError, load_official, save_official
from .default import default_model_paths
from .model import INFERENCE_MODULES, MODULE_NAMES, StyleTTS2, build_model

__all__ = [
    "INFERENCE_MODULES",
    "MODULE_NAMES",
    "CheckpointMismatchError",
    "StyleTTS2",
    "build_model",
    "default_model_paths",
    "load_official",
    "save_official",
]
