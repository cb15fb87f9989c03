"""LoRA for ``nn.LSTM``, registered with peft as a custom module.

peft has no LSTM layer: an LSTM applies its weight matrices inside one fused kernel, so LoRA cannot be
added as a side branch on the input the way peft does for Linear/Conv. We adapt it in weight space
instead: every weight matrix ``W`` of the LSTM (``weight_ih_l{k}``, ``weight_hh_l{k}``, their
``_reverse`` twins, ``weight_hr_l{k}`` when projections are used) gets its own factors, and the forward
pass calls the stock LSTM with ``W + s·B·A`` through :func:`torch.func.functional_call`. Biases are
not adapted, as for the other peft layers. ``lora_dropout`` cannot be expressed in weight space and is
refused.

The adapter's parameters follow peft's key layout, e.g. ``predictor.lstm.lora_A.default.weight_ih_l0``
in the model and ``predictor.lstm.lora_A.weight_ih_l0`` in a saved adapter. The mapping ``nn.LSTM ->
LoraLSTM`` is registered on the LoraConfig with ``_register_custom_module``; peft does not store that
mapping in ``adapter_config.json``, so :func:`tts_adapt.adapters.load_adapter` registers it again.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from peft.tuners.lora import LoraConfig, LoraLayer
from torch import nn
from torch.func import functional_call


def lstm_weight_names(lstm: nn.LSTM) -> list[str]:
    return [n for n in lstm._flat_weights_names if n.startswith("weight_")]


class LoraFactors(nn.Module):
    """One adapter's factors: a parameter per LSTM weight matrix, named like that matrix."""

    def __init__(self, shapes: dict[str, tuple[int, int]], device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))

    def __getitem__(self, name: str) -> nn.Parameter:
        return getattr(self, name)


class LoraLSTM(nn.Module, LoraLayer):
    """A peft LoRA layer around ``nn.LSTM`` (weight-space low-rank update of every weight matrix)."""

    def __init__(
        self,
        base_layer: nn.Module,
        adapter_name: str,
        config: LoraConfig,
        r: int = 0,
        lora_alpha: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        LoraLayer.__init__(self, base_layer)
        if not isinstance(self.get_base_layer(), nn.LSTM):
            raise TypeError(f"LoraLSTM wraps nn.LSTM, got {type(self.get_base_layer()).__name__}")
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config)

    def _get_in_out_features(self, module: nn.Module) -> tuple[int, int]:
        base = module
        while hasattr(base, "base_layer"):
            base = base.base_layer
        return base.input_size, 4 * base.hidden_size

    @property
    def weight_names(self) -> list[str]:
        return lstm_weight_names(self.get_base_layer())

    def update_layer(
        self, adapter_name: str, r: int, lora_alpha: int, config: LoraConfig, **kwargs: Any
    ) -> None:
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        if config.lora_dropout:
            raise ValueError(
                "LoRA on nn.LSTM works in weight space and cannot apply lora_dropout; use dropout=0 or leave "
                "LSTMs out of the targets"
            )
        if config.lora_bias or config.use_dora:
            raise ValueError("LoRA on nn.LSTM supports neither lora_bias nor DoRA")
        base = self.get_base_layer()
        ref = base.weight_ih_l0
        shapes = {n: tuple(getattr(base, n).shape) for n in self.weight_names}
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        self.lora_dropout[adapter_name] = nn.Identity()
        self.lora_A[adapter_name] = LoraFactors(
            {n: (r, s[1]) for n, s in shapes.items()}, ref.device, ref.dtype
        )
        self.lora_B[adapter_name] = LoraFactors(
            {n: (s[0], r) for n, s in shapes.items()}, ref.device, ref.dtype
        )
        self.lora_bias[adapter_name] = False
        self.use_rslora[adapter_name] = config.use_rslora
        self.use_dora[adapter_name] = False
        self.scaling[adapter_name] = lora_alpha / (math.sqrt(r) if config.use_rslora else r)
        if config.init_lora_weights is not False:
            self.reset_lora_parameters(adapter_name, config.init_lora_weights)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def reset_lora_parameters(self, adapter_name: str, init_lora_weights: Any) -> None:
        if adapter_name not in self.lora_A:
            return
        for name in self.weight_names:
            a = self.lora_A[adapter_name][name]
            if init_lora_weights is True:
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            elif str(init_lora_weights).lower() == "gaussian":
                nn.init.normal_(a, std=1 / self.r[adapter_name])
            else:
                raise ValueError(
                    f"LoraLSTM supports init_lora_weights True or 'gaussian', not {init_lora_weights!r}"
                )
            nn.init.zeros_(self.lora_B[adapter_name][name])

    def get_delta_weight(self, adapter: str) -> dict[str, torch.Tensor]:
        """``{weight name: s·B·A}`` for one adapter."""
        s = self.scaling[adapter]
        a, b = self.lora_A[adapter], self.lora_B[adapter]
        return {n: (b[n] @ a[n]) * s for n in self.weight_names}

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        from peft.tuners.tuners_utils import check_adapters_to_merge

        base = self.get_base_layer()
        for adapter in check_adapters_to_merge(self, adapter_names):
            if adapter not in self.lora_A:
                continue
            delta = self.get_delta_weight(adapter)
            if safe_merge and not all(torch.isfinite(d).all() for d in delta.values()):
                raise ValueError(
                    f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken"
                )
            with torch.no_grad():
                for n, d in delta.items():
                    getattr(base, n).add_(d.to(getattr(base, n).dtype))
            self.merged_adapters.append(adapter)

    def unmerge(self) -> None:
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.", stacklevel=2)
            return
        base = self.get_base_layer()
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            if adapter in self.lora_A:
                with torch.no_grad():
                    for n, d in self.get_delta_weight(adapter).items():
                        getattr(base, n).sub_(d.to(getattr(base, n).dtype))

    def forward(self, input: Any, hx: Any = None) -> Any:
        base = self.get_base_layer()
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return base(input, hx)
        active = [a for a in self.active_adapters if a in self.lora_A]
        if self.merged or not active:
            return base(input, hx)
        weights: dict[str, torch.Tensor] = {}
        for n in self.weight_names:
            w = getattr(base, n)
            for adapter in active:
                a, b = self.lora_A[adapter][n], self.lora_B[adapter][n]
                w = w + (b @ a).to(w.dtype) * self.scaling[adapter]
            weights[n] = w
        with warnings.catch_warnings():
            # the adapted weights are fresh tensors, not cuDNN's flat buffer; that costs one copy per call
            warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
            return functional_call(base, weights, (input, hx))

    def __repr__(self) -> str:
        return "lora." + super().__repr__()
