"""Turn a finished pre-training run into the shipped base model: one safetensors file + config.yml.

What goes in: every module an adaptation uses (the inference modules, the text aligner whose
alignments the fine-tuning objective needs, and the MPD/MSD discriminators it continues to train).
What stays out: the JDC pitch extractor (never trained: F0 targets come from a DSP tracker) and the
WavLM discriminator (no WavLM here); the config lists them as ``untrained_modules`` and sets the SLM
loss weight to 0, so loading and adaptation know; a run without adversarial steps also gets
``lambda_gen = 0`` (its MPD/MSD never trained). Float16 storage halves the size; ``check_half``
measures what it costs on a fixed synthesis before anyone ships it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..alignment.paths import CONFIG_KEY
from ..models.styletts2.model import MODULE_NAMES
from ..utils.io import load_tensors, save_tensors, write_text

log = logging.getLogger(__name__)

LEFT_OUT = ("pitch_extractor", "wd")
RECOGNIZER = "recognizer.safetensors"


def discriminators_trained(settings: dict[str, Any]) -> bool:
    """Whether the first stage ran its MPD/MSD adversarial steps (``adv_start`` before its end)."""
    start = settings.get("adv_start")
    return start is not None and int(start) < int(settings.get("first_steps", 0))


def shipped_config(
    config_path: str | Path, adversarial: bool = True, f0: str | None = None
) -> dict[str, Any]:
    """The run's config for users. Without adversarial pre-training the MPD/MSD are at their random
    initialisation, and their generator term (about twice the weighted mel loss at the start of a
    fine-tuning) would be a game with untrained critics; ``lambda_gen`` is set to 0 and adaptation
    skips them (docs/base-model.md has what it changed on the shipped model)."""
    cfg = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    cfg["untrained_modules"] = list(LEFT_OUT)
    cfg.setdefault("loss_params", {})["lambda_slm"] = 0.0
    if not adversarial:
        cfg["loss_params"]["lambda_gen"] = 0.0
    # what adaptation uses for F0 targets: there is no trained JDC; the tracker pre-training used (the
    # run's ``f0`` setting; a config's ``pretrain.f0`` when no run settings are given)
    cfg["f0_source"] = str(f0 or (cfg.get("pretrain") or {}).get("f0", "yin"))
    return cfg


def _portable(meta: dict[str, Any]) -> dict[str, Any]:
    """The run's metadata with its file settings (``recognizer``, ``init``) as bare file names: a
    shipped file should not carry the paths of the machine it was made on."""
    settings = dict(meta.get("settings", {}))
    for key in ("recognizer", "init"):
        if settings.get(key):
            settings[key] = Path(settings[key]).name
    return {**meta, "settings": settings}


def package_run(run: str | Path, out: str | Path, half: bool = True, metadata: dict | None = None) -> Path:
    """Write ``out/model.safetensors`` and ``out/config.yml`` from a ``tts-adapt pretrain`` folder."""
    run, out = Path(run), Path(out)
    tensors, meta = load_tensors(run / "model.safetensors")
    kept = {}
    for key, value in tensors.items():
        module = key.split(".", 1)[0]
        if module not in MODULE_NAMES:
            raise ValueError(f"{run / 'model.safetensors'}: unexpected tensor {key}")
        if module in LEFT_OUT:
            continue
        if half and value.is_floating_point() and value.dtype == torch.float32:
            value = value.half()
        kept[key] = value
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", kept, metadata={**(metadata or {}), "pretrain": _portable(meta)})
    settings = meta.get("settings", {})
    config = shipped_config(
        run / "config.yml", adversarial=discriminators_trained(settings), f0=settings.get("f0")
    )
    if settings.get("alignment") == "recognizer":
        # the decoder and duration predictor learned on this recogniser's paths, not on the text
        # aligner's: fine-tuning and curvature must align the same way, so it ships beside the weights
        source = Path(settings["recognizer"])
        if not source.exists():
            raise FileNotFoundError(
                f"{run}: pre-trained on the paths of recogniser {source}, which is not there (run "
                "package-model from the folder the pre-training ran in)"
            )
        save_tensors(out / RECOGNIZER, *load_tensors(source))
        config[CONFIG_KEY] = RECOGNIZER
    if settings.get("max_len"):
        # the decoder crop it learned on: adapting it on crops this long draws no short-crop warning
        config["pretrain_max_len"] = int(settings["max_len"])
    write_text(out / "config.yml", yaml.safe_dump(config, sort_keys=False))
    return out / "model.safetensors"


def check_half(run: str | Path, packaged: str | Path, text_phonemes: str, reference: np.ndarray) -> dict:
    """Waveform difference between the float32 run and the packaged weights on one seeded synthesis."""
    from ..models.styletts2 import INFERENCE_MODULES, load_official
    from ..models.styletts2.inference import synthesize

    run, packaged = Path(run), Path(packaged)
    full = load_official(run / "model.pth", run / "config.yml", modules=INFERENCE_MODULES)
    small = load_official(packaged / "model.safetensors", packaged / "config.yml", modules=INFERENCE_MODULES)
    a, _ = synthesize(full, "", reference=reference, phonemes=text_phonemes, seed=0, deterministic=True)
    b, _ = synthesize(small, "", reference=reference, phonemes=text_phonemes, seed=0, deterministic=True)
    n = min(len(a), len(b))
    return {
        "samples": [len(a), len(b)],
        "max_abs": float(np.abs(a[:n] - b[:n]).max()),
        "rms_ratio": float(np.sqrt(np.mean((a[:n] - b[:n]) ** 2)) / max(np.sqrt(np.mean(a[:n] ** 2)), 1e-9)),
    }
