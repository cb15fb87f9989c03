"""The shipped base model: a small multi-speaker StyleTTS 2 pre-trained by ``tts-adapt pretrain`` on the
synthetic espeak-ng corpus (docs/base-model.md). Every command uses it when ``--checkpoint`` and
``--config`` are omitted, so the toolkit does something real without the official checkpoint.

It is stored as one safetensors file (``<module>.<official key>``, float16 where that loses nothing
measurable) plus its ``config.yml``. Modules it never trained (``untrained_modules`` in the config: the
JDC pitch extractor, whose F0 targets come from a DSP tracker, and the WavLM discriminator) are absent.
"""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2] / "assets" / "base"
BASE_WEIGHTS = BASE_DIR / "model.safetensors"
BASE_MODEL_CONFIG = BASE_DIR / "config.yml"


def default_model_paths() -> tuple[Path, Path] | None:
    """``(weights, config)`` of the shipped base model, or ``None`` if this installation lacks it."""
    if BASE_WEIGHTS.is_file() and BASE_MODEL_CONFIG.is_file():
        return BASE_WEIGHTS, BASE_MODEL_CONFIG
    return None


def resolve_model_paths(checkpoint: str | None, config: str | None) -> tuple[str, str]:
    """The user's ``--checkpoint``/``--config``, or the shipped base model when both are omitted."""
    if checkpoint and config:
        return checkpoint, config
    if checkpoint or config:
        given, missing = ("--checkpoint", "--config") if checkpoint else ("--config", "--checkpoint")
        raise ValueError(
            f"{given} was given without {missing}: pass both, or neither for the shipped base model"
        )
    found = default_model_paths()
    if found is None:
        raise FileNotFoundError(
            f"no --checkpoint/--config given and the shipped base model is missing ({BASE_WEIGHTS}); "
            "reinstall tts-adapt or pass an official checkpoint and its config.yml"
        )
    return str(found[0]), str(found[1])
