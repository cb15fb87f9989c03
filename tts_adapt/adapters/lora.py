"""Inject LoRA with stock peft, find the injected layers again, and read their low-rank factors.

``apply_lora`` resolves the targets (see :mod:`.targets`), hands them to ``peft.inject_adapter_in_model``
as one exact regular expression (peft's list matching is by suffix, which could catch a deeper module of
the same relative name), registers :class:`~.lstm.LoraLSTM` for LSTMs, then repairs two things peft
gets wrong for StyleTTS 2:

* peft's ConvNd LoRA builds ``lora_A`` without the base conv's ``dilation`` (peft issue #3697), so the
  decoder's dilated resblock convs would fail with a length mismatch. We copy ``dilation`` and the
  padding mode onto ``lora_A``; the LoRA branch then computes ``conv(x, s·B·A, dilation=d)``, exactly
  the update peft's ``get_delta_weight`` describes, so merging stays correct.
* when one layer object is registered under two parents, peft only replaces it under the name it
  visits; the other parent is pointed at the same wrapper.

peft freezes every non-LoRA parameter of the model (including discriminators); unfreeze what your
training recipe updates in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from .lstm import LoraLSTM
from .targets import canonical_names, layer_kind, named_layers, resolve_targets, unwrap

DEFAULT_ADAPTER = "default"


def apply_lora(
    model: nn.Module,
    targets: str | Sequence[str] | None = None,
    rank: int = 16,
    alpha: float = 32,
    dropout: float = 0.0,
    layer_types: Iterable[str] = ("linear",),
    adapter_name: str = DEFAULT_ADAPTER,
    init_lora_weights: bool | str = True,
) -> nn.Module:
    """Add LoRA adapters (``ΔW = alpha/rank · B·A``, ``B = 0`` at init) to ``targets``, in place.

    ``targets``: None for the paper's targets (every ``nn.Linear`` in bert, bert_encoder, predictor,
    style_encoder, predictor_encoder, decoder, diffusion of a StyleTTS 2 model; every ``nn.Linear`` of any
    other model), or a list of layer names, module names or glob patterns; module names and patterns
    expand to the layers of ``layer_types`` (``"linear"``, ``"conv1d"``, ``"lstm"``). Returns ``model``.
    """
    if rank <= 0:
        raise ValueError(f"rank must be a positive integer, got {rank}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if adapter_name in (getattr(model, "peft_config", None) or {}):
        raise ValueError(
            f"the model already has a LoRA adapter named {adapter_name!r}; give every layer its adapter in "
            "one apply_lora call, or use another adapter_name"
        )
    names = resolve_targets(model, targets, layer_types)
    layers = named_layers(model)
    already = [n for n in names if isinstance(layers[n], LoraLayer)]
    if already:
        raise ValueError(
            f"layers already carry LoRA adapters: {already[:3]}{' ...' if len(already) > 3 else ''}"
        )
    kinds = {n: layer_kind(layers[n]) for n in names}
    for n in names:
        _check_supported(n, layers[n], kinds[n], dropout)

    # peft visits named_modules() (aliases removed), so it must be given the name it will see
    visible = {id(m): n for n, m in model.named_modules()}
    peft_names = sorted(visible[id(layers[n])] for n in names)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="^(?:" + "|".join(re.escape(n) for n in peft_names) + ")$",
        init_lora_weights=init_lora_weights,
    )
    if "lstm" in kinds.values():
        config._register_custom_module({nn.LSTM: LoraLSTM})
    originals = {n: layers[n] for n in names}
    for layer in originals.values():
        _refresh_normalised_weight(unwrap(layer))
    inject_adapter_in_model(config, model, adapter_name=adapter_name)
    _repoint_leaf_aliases(model, originals)
    _fix_conv_lora(model)
    injected = set(lora_layers(model))
    missing = [n for n in names if n not in injected]
    if missing:
        raise RuntimeError(f"peft did not inject LoRA into {missing[:5]}")
    return model


def _check_supported(name: str, layer: nn.Module, kind: str | None, dropout: float) -> None:
    base = unwrap(layer)
    if kind is None:
        raise ValueError(f"{name} is a {type(base).__name__}; LoRA supports nn.Linear, nn.Conv1d and nn.LSTM")
    if kind == "conv1d":
        if base.groups != 1:
            raise ValueError(
                f"{name} is a grouped Conv1d (groups={base.groups}); peft cannot merge LoRA into grouped "
                "convolutions, leave it out of the targets"
            )
        if base.padding_mode != "zeros":
            raise ValueError(f"{name} uses padding_mode={base.padding_mode!r}; only 'zeros' is supported")
    if kind == "lstm" and dropout:
        raise ValueError(
            f"{name} is an nn.LSTM: LoRA on LSTMs acts on the weights and cannot use dropout > 0"
        )


def _refresh_normalised_weight(module: nn.Module) -> None:
    """Recompute a hook-normalised ``weight`` from its parameters.

    Old-style weight/spectral norm keep ``weight`` as a plain tensor refreshed only by a forward pass,
    so after ``model.to(device/dtype)`` it is stale; peft would create the LoRA factors on its device
    and dtype.
    """
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    with torch.no_grad():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm):
                setattr(module, hook.name, hook.compute_weight(module))
            elif isinstance(hook, SpectralNorm):
                setattr(module, hook.name, hook.compute_weight(module, do_power_iteration=False))


def _fix_conv_lora(model: nn.Module) -> None:
    """Give every conv ``lora_A`` the dilation and padding of its base layer (peft leaves dilation at 1)."""
    for module in model.modules():
        if not isinstance(module, LoraLayer) or layer_kind(module) != "conv1d":
            continue
        base = module.get_base_layer()
        for conv in module.lora_A.values():
            conv.dilation = base.dilation
            conv.padding = base.padding
            conv.padding_mode = base.padding_mode
            conv._reversed_padding_repeated_twice = list(base._reversed_padding_repeated_twice)


def _repoint_leaf_aliases(model: nn.Module, originals: dict[str, nn.Module]) -> None:
    """If a wrapped layer object is also registered elsewhere, point that parent at the wrapper too."""
    by_id = {id(m): n for n, m in originals.items()}
    wrappers = {id(unwrap(m)): m for m in model.modules() if isinstance(m, LoraLayer)}
    for parent in list(model.modules()):
        if isinstance(parent, LoraLayer):
            continue
        for child_name, child in list(parent.named_children()):
            if id(child) in by_id and id(child) in wrappers and wrappers[id(child)] is not child:
                setattr(parent, child_name, wrappers[id(child)])


def lora_layers(model: nn.Module) -> dict[str, LoraLayer]:
    """Canonical name -> LoRA wrapper, each wrapper once, sorted by name."""
    canon = canonical_names(model)
    out: dict[str, LoraLayer] = {}
    for module in model.modules():
        if isinstance(module, LoraLayer) and id(module) in canon:
            out[canon[id(module)]] = module
    return dict(sorted(out.items()))


def active_adapters(layer: LoraLayer) -> list[str]:
    if layer.disable_adapters or layer.merged:
        return []
    return [a for a in layer.active_adapters if a in layer.lora_A]


def delta_factors(layer: LoraLayer) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{weight name: (B, A)}`` with the 2-D update ``ΔW = B @ A`` of the active adapters.

    ``B`` is ``[d_out, r]`` (scaling folded in), ``A`` is ``[r, d_in]``; for Conv1d, ``d_in = C_in·k`` in
    the order of ``weight.reshape(C_out, -1)``. Several active adapters are stacked along ``r``. Empty
    when the adapters are disabled or merged (the update is then part of the base weight).
    """
    adapters = active_adapters(layer)
    if not adapters:
        return {}
    if isinstance(layer, LoraLSTM):
        names = layer.weight_names
        pairs = {
            n: [(layer.lora_B[a][n] * layer.scaling[a], layer.lora_A[a][n]) for a in adapters] for n in names
        }
    else:
        pairs = {"weight": []}
        for a in adapters:
            b = layer.lora_B[a].weight
            a_w = layer.lora_A[a].weight
            pairs["weight"].append(
                (b.reshape(b.shape[0], -1) * layer.scaling[a], a_w.reshape(a_w.shape[0], -1))
            )
    out = {}
    for n, lst in pairs.items():
        if len(lst) == 1:
            out[n] = lst[0]
        else:
            out[n] = (torch.cat([b for b, _ in lst], dim=1), torch.cat([a for _, a in lst], dim=0))
    return out


def dense_delta(layer: LoraLayer) -> dict[str, torch.Tensor]:
    """``{weight name: ΔW}`` in the base weight's own shape (for checks and merging)."""
    base = layer.get_base_layer()
    out = {}
    for n, (b, a) in delta_factors(layer).items():
        shape = getattr(base, n).shape
        out[n] = (b @ a).reshape(shape)
    return out


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Parameter counts (each shared tensor once): total, trainable, LoRA, and per top-level module."""
    total = trainable = lora = 0
    per: dict[str, dict[str, int]] = {}
    for name, p in model.named_parameters():
        n = p.numel()
        top = name.split(".")[0]
        slot = per.setdefault(top, {"total": 0, "trainable": 0})
        total += n
        slot["total"] += n
        if p.requires_grad:
            trainable += n
            slot["trainable"] += n
        if ".lora_" in name:
            lora += n
    return {
        "total": total,
        "trainable": trainable,
        "lora": lora,
        "trainable_percent": 100.0 * trainable / max(total, 1),
        "per_module": per,
    }
