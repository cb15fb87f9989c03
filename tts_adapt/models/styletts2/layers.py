"""Building blocks shared by several StyleTTS 2 components.

Attribute names (``gamma``/``beta``, ``fc``, ``conv1``/``conv2``/``conv1x1``/``pool``, ``linear_layer``)
are the official ones, because they become state-dict keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .norm import weight_norm


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a ``[B, C, T]`` tensor (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class LinearNorm(nn.Module):
    """A plain linear layer kept under the official wrapper name (key ``linear_layer.*``)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class AdaIN1d(nn.Module):
    """Instance norm whose scale and shift come from the style vector: ``(1 + γ(s))·IN(x) + β(s)``."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm1d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s).unsqueeze(-1).chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdaLayerNorm(nn.Module):
    """Layer norm over channels of a ``[B, T, C]`` tensor, modulated by the style like :class:`AdaIN1d`."""

    def __init__(self, style_dim: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s).unsqueeze(1).chunk(2, dim=-1)  # [B, 1, C] each
        x = F.layer_norm(x, (self.channels,), eps=self.eps)
        return (1 + gamma) * x + beta


class AdainResBlk1d(nn.Module):
    """Style-conditioned 1-D residual block, optionally upsampling time by 2.

    The residual path upsamples with a learned depthwise transposed conv (``pool``), the shortcut with
    nearest-neighbour repetition; the sum is scaled by 1/sqrt(2) to keep unit variance.
    """

    def __init__(
        self, dim_in: int, dim_out: int, style_dim: int = 64, upsample: bool = False, dropout_p: float = 0.0
    ) -> None:
        super().__init__()
        self.upsample = bool(upsample)
        self.learned_sc = dim_in != dim_out
        self.conv1 = weight_norm(nn.Conv1d(dim_in, dim_out, 3, 1, 1))
        self.conv2 = weight_norm(nn.Conv1d(dim_out, dim_out, 3, 1, 1))
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = weight_norm(nn.Conv1d(dim_in, dim_out, 1, 1, 0, bias=False))
        self.dropout = nn.Dropout(dropout_p)
        if self.upsample:
            self.pool = weight_norm(
                nn.ConvTranspose1d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1, output_padding=1)
            )
        else:
            self.pool = nn.Identity()

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.learned_sc:
            x = self.conv1x1(x)
        return x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        x = self.conv1(self.dropout(self.pool(x)))
        x = F.leaky_relu(self.norm2(x, s), 0.2)
        return self.conv2(self.dropout(x))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` valid lengths from a padding mask that is True at padded positions."""
    return (~mask).sum(-1)


def run_lstm(
    lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None, total: int | None = None
) -> torch.Tensor:
    """Batch-first LSTM over padded sequences; padded steps come out as zeros.

    With every sequence at full length the LSTM runs unpacked (the official inference path does the
    same), otherwise through ``pack_padded_sequence`` so padding never leaks into the reverse direction.
    """
    total = x.shape[1] if total is None else total
    if lengths is None or bool((lengths == x.shape[1]).all()):
        out, _ = lstm(x)
    else:
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    if out.shape[1] < total:
        out = F.pad(out, (0, 0, 0, total - out.shape[1]))
    return out
