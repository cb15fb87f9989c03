"""Our StyleTTS 2: one component per file, official module names and state-dict keys.

Public API: :func:`build_model` (random init from an official ``config.yml``), :func:`load_official`
(strict loading of the official checkpoint) and :class:`StyleTTS2` (``synthesize``, ``sample_style``).
"""

from __future__ import annotations

from ...utils.lazy import lazy_exports

# imported on first use: naming a shipped voice needs no torch
_EXPORTS = {
    "CheckpointMismatchError": "checkpoint",
    "INFERENCE_MODULES": "model",
    "MODULE_NAMES": "model",
    "StyleTTS2": "model",
    "build_model": "model",
    "default_model_paths": "default",
    "load_official": "checkpoint",
    "save_official": "checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
