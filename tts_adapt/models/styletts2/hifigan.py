"""HiFi-GAN generator with an NSF harmonic source (the LibriTTS model's vocoder)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .norm import weight_norm
from .source import SourceDraws, SourceModuleHnNSF, upsample_f0
from .vocoder_blocks import AdaINResBlock1, snake


class HiFiGANGenerator(nn.Module):
    def __init__(
        self,
        style_dim: int,
        resblock_kernel_sizes: list[int],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        resblock_dilation_sizes: list[list[int]],
        upsample_kernel_sizes: list[int],
        sampling_rate: int = 24000,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.hop = math.prod(upsample_rates)
        self.m_source = SourceModuleHnNSF(sampling_rate, self.hop, harmonic_num=8, voiced_threshold=10)
        self.noise_convs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(c_in, c_out, k, u, padding=u // 2 + u % 2, output_padding=u % 2)
                )
            )
            if i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1 :])
                self.noise_convs.append(
                    nn.Conv1d(1, c_out, kernel_size=stride * 2, stride=stride, padding=(stride + 1) // 2)
                )
                self.noise_res.append(AdaINResBlock1(c_out, 7, [1, 3, 5], style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
                self.noise_res.append(AdaINResBlock1(c_out, 11, [1, 3, 5], style_dim))
        self.resblocks = nn.ModuleList()
        self.alphas = nn.ParameterList([nn.Parameter(torch.ones(1, upsample_initial_channel, 1))])
        ch = upsample_initial_channel
        for i in range(self.num_upsamples):
            ch = upsample_initial_channel // 2 ** (i + 1)
            self.alphas.append(nn.Parameter(torch.ones(1, ch, 1)))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(ch, k, d, style_dim))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        f0_up = upsample_f0(f0, self.hop)
        har, _, _ = self.m_source(f0_up, deterministic, generators, draws)
        har = har.transpose(1, 2)  # [B, 1, L]
        for i in range(self.num_upsamples):
            x = snake(x, self.alphas[i])
            src = self.noise_res[i](self.noise_convs[i](har), s)
            x = self.ups[i](x) + src
            xs = self.resblocks[i * self.num_kernels](x, s)
            for j in range(1, self.num_kernels):
                xs += self.resblocks[i * self.num_kernels + j](x, s)
            x = xs / self.num_kernels
        x = snake(x, self.alphas[self.num_upsamples])
        return torch.tanh(self.conv_post(x))
