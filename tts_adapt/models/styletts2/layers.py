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

#: ``torch.rsqrt(torch.tensor(2))`` as computed in float32 (0.70710677...), held exactly as a Python float.
RSQRT2_FLOAT32 = float(torch.rsqrt(torch.tensor(2.0, dtype=torch.float32)))


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
        if not torch.is_grad_enabled() and not torch.jit.is_tracing():
            return self.norm(x).mul_(1 + gamma).add_(beta)  # inference: same values, no temporaries
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

    #: Kokoro scales the sum by multiplying with float32 ``rsqrt(2)``; the official code divides by
    #: ``sqrt(2)``. The two round differently in the last bit, which the decoder's phase amplifies.
    multiply_rsqrt2: bool = False

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.multiply_rsqrt2:
            return (self._residual(x, s) + self._shortcut(x)) * RSQRT2_FLOAT32
        return (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` valid lengths from a padding mask that is True at padded positions."""
    return (~mask).sum(-1)


def run_lstm(
    lstm: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, total: int | None = None
) -> torch.Tensor:
    """Batch-first LSTM over padded sequences; padded steps come out as zeros.

    The official code packs the batch (``pack_padded_sequence``) so that padding never reaches the
    reverse direction. On CPU a packed LSTM runs step by step in small operations, each with its
    autograd node; the fused kernel needs a padded tensor. So a one-layer bidirectional LSTM runs twice,
    fused: on the right-padded batch, whose forward direction sees each sequence from its first step,
    and on the same batch left-padded, whose reverse direction starts at each sequence's last step.
    Each direction thus computes exactly the recurrence of the packed run (only the kernels' summation
    order differs), and both passes together run 1.5-3.5x faster forward and backward
    (docs/training.md). Other LSTMs run packed. With every sequence at full length the LSTM runs once,
    unpacked, as the official inference does.
    """
    total = x.shape[1] if total is None else total
    base = lstm.get_base_layer() if hasattr(lstm, "get_base_layer") else lstm
    if lengths is None or bool((lengths == x.shape[1]).all()):
        out, _ = lstm(x)
    elif base.num_layers == 1 and base.batch_first:
        out = _padded_lstm(lstm, x, lengths.to(x.device), base.bidirectional)
    else:
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    if out.shape[1] < total:
        out = F.pad(out, (0, 0, 0, total - out.shape[1]))
    return out


def _padded_lstm(
    lstm: nn.Module, x: torch.Tensor, lengths: torch.Tensor, bidirectional: bool
) -> torch.Tensor:
    """A one-layer LSTM over a right-padded batch, equal to the packed run (see :func:`run_lstm`)."""
    b, t, _ = x.shape
    steps = torch.arange(t, device=x.device).view(1, t)
    valid = (steps < lengths.view(b, 1)).unsqueeze(-1)
    out, _ = lstm(x)
    if bidirectional:
        hidden = out.shape[-1] // 2
        shift = (t - lengths).view(b, 1)  # left-padded position p holds step p - shift
        src = (steps - shift).clamp(min=0).unsqueeze(-1)
        left = torch.where((steps >= shift).unsqueeze(-1), x.gather(1, src.expand(b, t, x.shape[2])), 0.0)
        rev, _ = lstm(left)
        back = (steps + shift).clamp(max=t - 1).unsqueeze(-1).expand(b, t, hidden)
        out = torch.cat([out[..., :hidden], rev[..., hidden:].gather(1, back)], dim=-1)
    return torch.where(valid, out, 0.0)
