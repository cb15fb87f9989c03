"""How a Linear or Conv1d layer looks to Kronecker-factored curvature: inputs and output gradients as
``[rows, frames, features]`` matrices, with the layer's weight viewed as ``[d_out, d_in]``.

Conv1d uses the KFC expansion (Grosse & Martens 2016): every output position is a frame whose input
is the receptive-field patch, unfolded in the order of ``weight.reshape(C_out, C_in·k)``, so the conv
is a Linear over patches. Weight-normalised layers are handled through their effective weight.
A bias is folded in as a constant-1 input, which makes the weight ``[d_out, d_in + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..adapters.merge import effective_weight
from ..adapters.targets import layer_kind, unwrap


@dataclass
class LayerSpec:
    name: str
    kind: str  # "linear" | "conv1d" | "lstm"
    module: nn.Module  # the plain layer (a LoRA wrapper's base layer)
    d_out: int
    d_in: int  # fan-in without the bias column
    bias: bool
    weight_shape: tuple[int, ...]

    @property
    def d_aug(self) -> int:
        return self.d_in + int(self.bias)

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "d_out": self.d_out,
            "d_in": self.d_in,
            "bias": self.bias,
            "weight_shape": list(self.weight_shape),
            **self.conv_info(),
        }

    def conv_info(self) -> dict[str, Any]:
        if self.kind != "conv1d":
            return {}
        m = self.module
        return {
            "kernel_size": m.kernel_size[0],
            "stride": m.stride[0],
            "dilation": m.dilation[0],
            "padding": m.padding if isinstance(m.padding, str) else m.padding[0],
        }

    # ---- frames -------------------------------------------------------------------------------
    def frame_shape(self, output: torch.Tensor) -> tuple[int, ...]:
        if self.kind == "linear":
            return tuple(output.shape[:-1]) if output.dim() > 1 else (1,)
        return (output.shape[0], output.shape[-1]) if output.dim() == 3 else (1, output.shape[-1])

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Layer input -> ``[rows, frames, d_in]``."""
        if self.kind == "linear":
            if x.dim() == 1:
                return x.reshape(1, 1, -1)
            return x.reshape(x.shape[0], -1, x.shape[-1])
        m = self.module
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if isinstance(m.padding, str):
            x = F.pad(x, m._reversed_padding_repeated_twice)
            pad = 0
        else:
            pad = m.padding[0]
        cols = F.unfold(
            x.unsqueeze(-1),
            kernel_size=(m.kernel_size[0], 1),
            dilation=(m.dilation[0], 1),
            padding=(pad, 0),
            stride=(m.stride[0], 1),
        )  # [rows, C_in·k, T_out]
        return cols.transpose(1, 2)

    def grads(self, gy: torch.Tensor) -> torch.Tensor:
        """Gradient w.r.t. the layer output -> ``[rows, frames, d_out]``."""
        if self.kind == "linear":
            if gy.dim() == 1:
                return gy.reshape(1, 1, -1)
            return gy.reshape(gy.shape[0], -1, gy.shape[-1])
        if gy.dim() == 2:
            gy = gy.unsqueeze(0)
        return gy.transpose(1, 2)

    # ---- weights ------------------------------------------------------------------------------
    def weight_matrix(self) -> torch.Tensor:
        """The effective weight as ``[d_out, d_in (+1 bias column)]`` (differentiable)."""
        w = effective_weight(self.module).reshape(self.d_out, -1)
        if self.bias:
            w = torch.cat([w, self.module.bias.reshape(-1, 1)], dim=1)
        return w


def make_spec(name: str, layer: nn.Module) -> LayerSpec:
    base = unwrap(layer)
    kind = layer_kind(base)
    if kind == "linear":
        return LayerSpec(
            name,
            kind,
            base,
            base.out_features,
            base.in_features,
            base.bias is not None,
            tuple(base.weight.shape),
        )
    if kind == "conv1d":
        if base.groups != 1:
            raise ValueError(
                f"{name}: grouped Conv1d (groups={base.groups}) is not supported by the curvature code"
            )
        if base.padding_mode != "zeros":
            raise ValueError(
                f"{name}: Conv1d padding_mode {base.padding_mode!r} is not supported (only 'zeros')"
            )
        shape = tuple(effective_weight(base).shape)
        return LayerSpec(name, kind, base, shape[0], shape[1] * shape[2], base.bias is not None, shape)
    if kind == "lstm":
        return LayerSpec(
            name,
            kind,
            base,
            4 * base.hidden_size,
            base.input_size,
            base.bias,
            (4 * base.hidden_size, base.input_size),
        )
    raise ValueError(f"{name}: {type(base).__name__} is not a supported layer (Linear, Conv1d, LSTM)")
