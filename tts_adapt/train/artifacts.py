"""The adapted-model folder: what ``tts-adapt adapt`` leaves behind, and how to load it back.

``out/`` holds ``adapter/`` (LoRA methods, peft layout, safetensors) or ``weights.safetensors`` (full and
linear methods: the changed generator weights), ``config.yml`` (the resolved model config, with the
diffusion ``sigma_data`` the run ended with), and ``manifest.json`` (method, prior, data, steps,
trainable-parameter counts, base checkpoint and its hash, versions, final losses). A voice-pack model
(Kokoro) also leaves ``voices.safetensors``: its stock voices and the learned one, which the folder's
config names as its voices and its default voice (the ``voice`` method leaves nothing else).
"""

from __future__ import annotations

import copy
import os
import platform
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..utils.io import load_tensors, save_tensors, write_json, write_text
from .manifest import MANIFEST, read_manifest
from .methods import GENERATOR_MODULES, generator_modules
from .provenance import check_base

CONFIG = "config.yml"
VOICES = "voices.safetensors"
WEIGHTS = "weights.safetensors"
ADAPTER = "adapter"


def resolved_config(config: dict[str, Any], sigma_data: float) -> dict[str, Any]:
    """The config with the final ``sigma_data`` and the Utils/ hyper-parameters embedded, so the
    folder is self-contained (no ``PLBERT_dir``/``ASR_config`` lookups relative to the original)."""
    from ..models.styletts2 import config as C

    cfg = copy.deepcopy({k: v for k, v in config.items() if not k.startswith("_")})
    if sigma_data is not None:
        cfg["model_params"]["diffusion"]["dist"]["sigma_data"] = float(sigma_data)
    cfg["plbert_model_params"] = C.plbert_params(config)
    cfg["asr_model_params"] = C.asr_params(config)
    cfg["jdc_args"] = C.jdc_params(config)
    # side files named relative to the base's folder: keep them findable from the adapted folder
    for key in ("alignment_recognizer", "finetune_config", "voice_embeddings"):
        if config.get(key):
            found = C.resolve_path(config[key], config)
            cfg[key] = str(found.resolve()) if found else config[key]
    return cfg


def generator_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable generator parameters under ``<module>.<key>`` names (full/linear methods)."""
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    out = {}
    for name in generator_modules(model):
        for key, t in getattr(model, name).state_dict(keep_vars=True).items():
            if id(t) in trainable:
                out[f"{name}.{key}"] = t.detach().cpu()
    return out


def export_adapted(
    model: nn.Module,
    out: str | os.PathLike,
    method: str,
    config: dict[str, Any],
    sigma_data: float,
    manifest: dict[str, Any],
) -> Path:
    """Write the adapted-model folder (atomically, file by file; the manifest last)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if method.startswith("lora"):
        from ..adapters import save_adapter

        save_adapter(model, out / ADAPTER)
    elif method != "voice":
        save_tensors(out / WEIGHTS, generator_weights(model), {"method": method})
    resolved = resolved_config(config, sigma_data)
    voices = getattr(model, "voices", None)
    if voices is not None and len(voices.learned):
        resolved.update(voice_packs=VOICES, default_voice=next(iter(voices.learned)))
        save_voices(voices, out / VOICES)
    write_text(out / CONFIG, yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
    write_json(out / MANIFEST, {**manifest, "completed": True, "versions": versions()})
    return out


def save_voices(voices: nn.Module, path: Path) -> None:
    """Every voice of the bank as one pack file: stock packs as shipped (float16, exact), learned ones
    in float32, with which is which in the metadata."""
    packs, learned = voices.packs(), list(voices.learned)
    tensors = {
        n: p.styles.unsqueeze(1).to(torch.float32 if n in learned else torch.float16)
        for n, p in packs.items()
    }
    save_tensors(path, tensors, {"learned": learned, "layout": "[rows, 1, width] per voice"})


def versions() -> dict[str, str]:
    import peft

    from .. import __version__

    return {
        "tts_adapt": __version__,
        "torch": torch.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
    }


def load_adapted_model(
    out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    merge: bool = True,
    modules: tuple[str, ...] | None = GENERATOR_MODULES,
    allow_base_mismatch: bool = False,
):
    """The base model (``checkpoint`` or the one recorded in the manifest) with the adaptation applied.

    The base must hold the weights the folder was adapted from (:func:`~.provenance.check_base`; same
    weights under another path or file name are fine); ``allow_base_mismatch`` turns a refusal into a
    warning. LoRA adapters are merged into the weights by default, so inference costs what the base
    model costs.
    """
    from ..models.styletts2 import load_official

    out = Path(out)
    manifest = read_manifest(out)
    base = checkpoint or manifest.get("base", {}).get("checkpoint")
    if not base or not Path(base).exists():
        raise FileNotFoundError(
            f"base checkpoint {base!r} of {out} not found; pass the pre-trained checkpoint explicitly"
        )
    check_base(out, base, manifest, allow_mismatch=allow_base_mismatch)
    model = load_official(base, out / CONFIG, modules=modules)
    method = manifest["method"]
    if method == "voice":
        pass  # the learned voice is in the folder's voices, which its config names
    elif method.startswith("lora"):
        from ..adapters import load_adapted

        load_adapted(model, out / ADAPTER, merge=merge)
    else:
        weights, _ = load_tensors(out / WEIGHTS)
        state = model.state_dict()
        unknown = sorted(set(weights) - set(state))
        if unknown:
            raise ValueError(f"{out / WEIGHTS} has tensors the model lacks: {unknown[:3]}")
        with torch.no_grad():
            for k, v in weights.items():
                state[k].copy_(v)
    return model.eval()
