"""Blocks shared by the HiFi-GAN and iSTFTNet generators."""

from __future__ import annotations

import torch
from torch import nn

from .layers import AdaIN1d
from .norm import weight_norm


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class _SnakeFixedAlpha(torch.autograd.Function):
    """Snake with a constant ``α``: the input gradient is ``1 + sin(2αx)``, from one saved tensor.

    Why: autograd through ``x + sin²(αx)/α`` saves three waveform-rate tensors and runs six element-wise
    passes backwards. When ``α`` does not train (LoRA adaptation freezes it), the closed form needs one
    saved tensor and two passes; the decoder's Snake layers then cost about half as much per training
    step (docs/training.md). Values and gradients equal autograd's up to float rounding."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ax = alpha * x
        ctx.save_for_backward(ax)
        s = torch.sin(ax)
        return torch.addcmul(x, s.mul_(s), 1 / alpha, out=s)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (ax,) = ctx.saved_tensors
        return torch.addcmul(grad, grad, torch.sin(2 * ax)), None


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Snake activation ``x + sin²(αx)/α`` (periodic inductive bias for waveforms)."""
    if torch.is_grad_enabled() and x.requires_grad and not alpha.requires_grad:
        return _SnakeFixedAlpha.apply(x, alpha)
    if not torch.is_grad_enabled() and not torch.jit.is_tracing():
        # inference: the same operations in the same order (bit for bit), in one buffer instead of four
        s = torch.sin(alpha * x)
        return s.mul_(s).mul_(1 / alpha).add_(x)
    return x + (1 / alpha) * (torch.sin(alpha * x) ** 2)


class AdaINResBlock1(nn.Module):
    """HiFi-GAN ResBlock1 with AdaIN style conditioning and Snake activations."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5), style_dim: int = 64) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d))
            )
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size, 1))
            )
            for _ in dilation
        )
        self.adain1 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilation)
        self.adain2 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilation)
        self.alpha1 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation)
        self.alpha2 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation)
        for conv in [*self.convs1, *self.convs2]:
            nn.init.normal_(conv.weight_v, 0.0, 0.01)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        for c1, c2, n1, n2, a1, a2 in zip(
            self.convs1, self.convs2, self.adain1, self.adain2, self.alpha1, self.alpha2
        ):
            xt = c1(snake(n1(x, s), a1))
            xt = c2(snake(n2(xt, s), a2))
            x = xt + x
        return x
