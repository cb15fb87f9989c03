"""Blocks shared by the HiFi-GAN and iSTFTNet generators."""

from __future__ import annotations

import torch
from torch import nn

from .layers import AdaIN1d
from .norm import weight_norm


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Snake activation ``x + sin²(αx)/α`` (periodic inductive bias for waveforms)."""
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
