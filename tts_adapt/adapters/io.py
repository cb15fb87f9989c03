"""Save and load LoRA adapters in peft's on-disk layout.

A saved adapter is a folder with ``adapter_config.json`` (peft's ``LoraConfig`` fields, with
``target_modules`` the list of canonical layer names) and ``adapter_model.safetensors`` (keys
``base_model.model.<layer>.lora_A.weight`` etc., exactly as ``PeftModel.save_pretrained`` writes them;
aliased layers once). Our own metadata (layer kinds, the custom LSTM mapping) sits in the safetensors
header. Loading re-injects the adapters (registering the LSTM layer again, since peft does not persist
custom mappings) and fills them through ``peft.set_peft_model_state_dict``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

from ..utils.io import load_tensors, save_tensors, write_json
from .lora import DEFAULT_ADAPTER, apply_lora, lora_layers
from .targets import layer_kind

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
FORMAT = "tts-adapt-lora/1"


def _jsonable(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):  # enums
        return value.value
    return value


def save_adapter(model: nn.Module, path: str | os.PathLike, adapter_name: str = DEFAULT_ADAPTER) -> Path:
    """Write the LoRA weights of ``adapter_name`` to the folder ``path``; returns the folder."""
    layers = lora_layers(model)
    if not layers or adapter_name not in getattr(model, "peft_config", {}):
        raise ValueError(f"the model has no LoRA adapter named {adapter_name!r} to save")
    state = get_peft_model_state_dict(model, adapter_name=adapter_name)
    keep = {}
    for name in layers:
        for key, value in state.items():
            if key.startswith(name + ".lora_"):
                keep[PEFT_PREFIX + key] = value.detach().cpu()
    cfg = model.peft_config[adapter_name]
    config = {k: _jsonable(v) for k, v in cfg.to_dict().items() if not k.startswith("_")}
    config["target_modules"] = list(layers)
    meta = {
        "format": FORMAT,
        "adapter_name": adapter_name,
        "layers": {n: layer_kind(m) for n, m in layers.items()},
        "custom_modules": {"torch.nn.LSTM": "tts_adapt.adapters.lstm.LoraLSTM"},
    }
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / WEIGHTS_NAME, keep, meta)
    write_json(out / CONFIG_NAME, config)
    return out


def read_adapter(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """``(tensors, adapter_config, tts_adapt metadata)`` of a saved adapter folder."""
    folder = Path(path)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.exists():
            raise FileNotFoundError(f"not a saved adapter: {p} is missing")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path} is not valid JSON: {e}") from e
    tensors, meta = load_tensors(w_path)
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{cfg_path}: peft_type is {config.get('peft_type')!r}, expected 'LORA'")
    return tensors, config, meta


def load_adapter(model: nn.Module, path: str | os.PathLike, adapter_name: str = DEFAULT_ADAPTER) -> nn.Module:
    """Load a saved adapter into ``model`` (injecting the LoRA layers first if needed); returns ``model``."""
    tensors, config, meta = read_adapter(path)
    targets = list(config.get("target_modules") or [])
    if not isinstance(targets, list) or not targets:
        raise ValueError(f"{Path(path) / CONFIG_NAME}: target_modules must be the list of adapted layers")
    kinds = meta.get("layers") or {}
    present = lora_layers(model)
    if present:
        if sorted(present) != sorted(targets):
            raise ValueError(
                f"the model already carries LoRA on other layers than the adapter in {path} "
                f"({len(present)} vs {len(targets)} layers)"
            )
    else:
        try:
            apply_lora(
                model,
                targets=targets,
                rank=int(config["r"]),
                alpha=float(config["lora_alpha"]),
                dropout=float(config.get("lora_dropout") or 0.0),
                layer_types=sorted(set(kinds.values()) or {"linear"}),
                adapter_name=adapter_name,
            )
        except ValueError as e:
            raise ValueError(f"adapter {path} does not fit this model: {e}") from e
    expected = {
        PEFT_PREFIX + n + "." + k.replace(f".{adapter_name}", "", 1)
        for n, layer in lora_layers(model).items()
        for k, _ in layer.named_parameters()
        if k.startswith("lora_") and f".{adapter_name}" in k
    }
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ValueError(
            f"adapter {path} does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    try:
        result = set_peft_model_state_dict(model, tensors, adapter_name=adapter_name)
    except RuntimeError as e:
        raise ValueError(f"adapter {path} does not fit this model: {str(e).splitlines()[0]}") from e
    if result.unexpected_keys:
        raise ValueError(f"adapter {path}: keys the model does not have: {result.unexpected_keys[:3]}")
    return model
