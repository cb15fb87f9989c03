"""Fold LoRA updates into the base weights and remove the wrappers, for inference and export.

A naive ``weight += ΔW`` is silently lost on layers with the old hook-based ``weight_norm`` (StyleTTS 2's
convolutions): their ``weight`` is recomputed from ``weight_g``/``weight_v`` before every forward. We
write the merged weight into the parameters that define it (``v = W + ΔW``, ``g = ‖v‖`` per output
channel), so the model's state dict keeps the official key names and the merged checkpoint loads like
the original. Spectral-normalised layers cannot represent an arbitrary merged weight with their stored
``u``/``v`` and are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

if TYPE_CHECKING:  # peft is imported only when LoRA layers are merged
    from peft.tuners.lora import LoraLayer


def _hook(module: nn.Module, cls: type, name: str):
    for h in module._forward_pre_hooks.values():
        if isinstance(h, cls) and h.name == name:
            return h
    return None


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The weight a forward pass would use now, recomputed (differentiable) from its defining tensors."""
    wn = _hook(module, WeightNorm, name)
    if wn is not None:
        return wn.compute_weight(module)
    sn = _hook(module, SpectralNorm, name)
    if sn is not None:
        return sn.compute_weight(module, do_power_iteration=False)
    return getattr(module, name)


def fold_into(module: nn.Module, name: str, delta: torch.Tensor) -> None:
    """Add ``delta`` to the effective ``module.<name>`` by updating the tensors that define it."""
    with torch.no_grad():
        wn = _hook(module, WeightNorm, name)
        if wn is not None:
            g, v = getattr(module, name + "_g"), getattr(module, name + "_v")
            new = wn.compute_weight(module) + delta.to(v.dtype)
            v.copy_(new)
            g.copy_(torch.norm_except_dim(new, 2, wn.dim))
            setattr(module, name, wn.compute_weight(module))
            return
        if _hook(module, SpectralNorm, name) is not None:
            raise ValueError(
                f"cannot merge LoRA into the spectral-normalised {type(module).__name__}: its stored power-"
                "iteration vectors cannot represent the merged weight; keep the adapter unmerged"
            )
        if parametrize.is_parametrized(module, name):
            kinds = [type(p).__name__ for p in getattr(module.parametrizations, name)]
            if any("Spectral" in k for k in kinds):
                raise ValueError(f"cannot merge LoRA into a spectral-normalised {type(module).__name__}")
            setattr(module, name, getattr(module, name) + delta.to(getattr(module, name).dtype))
            return
        param = getattr(module, name)
        param.add_(delta.to(param.dtype))


def _delta(layer: LoraLayer, adapter: str) -> dict[str, torch.Tensor]:
    from .lstm import LoraLSTM

    if isinstance(layer, LoraLSTM):
        return layer.get_delta_weight(adapter)
    return {"weight": layer.get_delta_weight(adapter)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every active LoRA adapter into its base layer and put the plain layer back, in place.

    Afterwards the model has no LoRA wrappers and its ``state_dict`` has the original key names. Returns
    ``model``.
    """
    from .lora import active_adapters, lora_layers

    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA adapters to merge")
    for name, layer in layers.items():
        base = layer.get_base_layer()
        if any(getattr(layer, "lora_bias", {}).values()):
            raise ValueError(f"{name}: merging LoRA biases is not supported")
        if layer.merged:
            raise ValueError(f"{name}: adapters were merged with peft's merge(); unmerge() them first")
        for adapter in active_adapters(layer):
            for wname, delta in _delta(layer, adapter).items():
                try:
                    fold_into(base, wname, delta.detach())
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from e
    # put the plain layers back wherever a wrapper is registered (aliases included)
    wrappers = {id(w): w for w in layers.values()}
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in wrappers:
                setattr(parent, child_name, child.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model
