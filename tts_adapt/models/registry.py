"""Which base model a command uses: ``--model NAME``, an explicit ``--checkpoint``/``--config`` pair, or
the default.

The default is Kokoro-82M when its weight packages are installed (``tts-adapt[kokoro]``, part of
``[all]``): a StyleTTS 2 trained on real speech, with 28 English voices. Without them it is the small
model we pre-trained on espeak-ng voices (``tts-adapt-base``), which ships inside the package and keeps
the tests and the CPU pre-training story fast. ``$TTS_ADAPT_MODEL`` names another default (the test
suite sets ``tts-adapt-base``; tests of Kokoro name it).
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger(__name__)

KOKORO = "kokoro"
BASE = "tts-adapt-base"
MODEL_NAMES = (KOKORO, BASE)


#: Names the default model for every command (e.g. ``tts-adapt-base`` for fast experiments).
ENV_DEFAULT = "TTS_ADAPT_MODEL"


def default_model_name() -> str:
    """``$TTS_ADAPT_MODEL`` if set, else Kokoro where its weights are installed, else the shipped model."""
    from .kokoro import parts_installed

    chosen = os.environ.get(ENV_DEFAULT)
    if chosen:
        if chosen not in MODEL_NAMES:
            raise ValueError(f"${ENV_DEFAULT}={chosen!r}: expected one of {', '.join(MODEL_NAMES)}")
        return chosen
    return KOKORO if parts_installed() else BASE


def model_paths(name: str) -> tuple[str, str]:
    """``(weights, config)`` of a named model."""
    if name == KOKORO:
        from .kokoro import kokoro_paths

        weights, config = kokoro_paths()
    elif name == BASE:
        from .styletts2.default import BASE_WEIGHTS, default_model_paths

        found = default_model_paths()
        if found is None:
            raise FileNotFoundError(f"the shipped base model is missing ({BASE_WEIGHTS}); reinstall")
        weights, config = found
    else:
        raise ValueError(f"unknown --model {name!r}; the named models are {', '.join(MODEL_NAMES)}")
    return str(weights), str(config)


def resolve_model(model: str | None, checkpoint: str | None, config: str | None) -> tuple[str, str]:
    """The user's ``--checkpoint``/``--config``, else the model ``--model`` names, else the default."""
    if model and (checkpoint or config):
        raise ValueError("--model names a model; drop --checkpoint/--config, or drop --model")
    if checkpoint and config:
        return checkpoint, config
    if checkpoint or config:
        given, missing = ("--checkpoint", "--config") if checkpoint else ("--config", "--checkpoint")
        raise ValueError(f"{given} was given without {missing}: pass both, or --model NAME, or neither")
    name = model or default_model_name()
    if model is None:
        log.info(
            "model: %s (the default; --model %s for the other)", name, BASE if name == KOKORO else KOKORO
        )
    return model_paths(name)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--checkpoint`` and ``--config``, worded the same in every command."""
    p.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help=f"a named base model: {KOKORO} (Kokoro-82M) or {BASE} (our small espeak-trained model, "
        f"shipped) (default: ${ENV_DEFAULT}, else {KOKORO} where tts-adapt[kokoro] is installed, "
        f"else {BASE})",
    )
    p.add_argument(
        "--checkpoint",
        help="a base checkpoint instead: official StyleTTS 2 .pth, Kokoro's kokoro-v1_0.pth, or ours "
        "(.safetensors)",
    )
    p.add_argument("--config", help="the config of --checkpoint (config.yml, or Kokoro's config.json)")
