"""iSTFTNet generator: predicts a magnitude/phase spectrogram and inverts it with an iSTFT.

Fewer upsampling layers than HiFi-GAN (the iSTFT supplies the last factor ``gen_istft_hop_size``).
As in the original, the harmonic source is computed without gradient and fed as its STFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .norm import weight_norm
from .source import SourceDraws, SourceModuleHnNSF, upsample_f0
from .vocoder_blocks import AdaINResBlock1


def _fft_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs (``--amp bf16/fp16``) in float32: CPU FFTs have no bfloat16 complex type, and
    CUDA's half FFTs only take powers of two; float32 and float64 pass unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class ISTFT(nn.Module):
    """STFT/iSTFT pair with a periodic Hann window, centred frames, reflect padding."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        # Periodic Hann computed in float64 then rounded, bit-identical to the original's scipy window:
        # iSTFTNet feeds the source's STFT *phase* to the network, and in near-silent bins the last bit
        # of the window decides the angle.
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64).float()
        self.register_buffer("window", window, persistent=False)

    def use_float32_window(self) -> None:
        """Kokoro's window: the periodic Hann computed in float32 (up to 1.3e-7 from the official one)."""
        self.window = torch.hann_window(self.win_length, periodic=True, dtype=torch.float32).to(self.window)

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _fft_dtype(x)
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            self.win_length,
            window=self.window.to(x.dtype),
            return_complex=True,
        )
        return spec.abs(), spec.angle()

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        magnitude, phase = _fft_dtype(magnitude), _fft_dtype(phase)
        spec = magnitude * torch.exp(phase * 1j)
        wave = torch.istft(
            spec, self.n_fft, self.hop_length, self.win_length, window=self.window.to(magnitude.dtype)
        )
        return wave.unsqueeze(-2)


class ISTFTNetGenerator(nn.Module):
    #: Run under ``torch.no_grad`` (the harmonic source, as in the original): no gradient ever reaches
    #: its layers, so adapters and curvature there would be dead weight.
    gradient_free_children: tuple[str, ...] = ("m_source",)

    def __init__(
        self,
        style_dim: int,
        resblock_kernel_sizes: list[int],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        resblock_dilation_sizes: list[list[int]],
        upsample_kernel_sizes: list[int],
        gen_istft_n_fft: int,
        gen_istft_hop_size: int,
        sampling_rate: int = 24000,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.hop = math.prod(upsample_rates) * gen_istft_hop_size
        self.m_source = SourceModuleHnNSF(sampling_rate, self.hop, harmonic_num=8, voiced_threshold=10)
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        self.ups = nn.ModuleList(
            weight_norm(
                nn.ConvTranspose1d(
                    upsample_initial_channel // 2**i,
                    upsample_initial_channel // 2 ** (i + 1),
                    k,
                    u,
                    padding=(k - u) // 2,
                )
            )
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes))
        )
        self.resblocks = nn.ModuleList()
        spec_channels = gen_istft_n_fft + 2
        ch = upsample_initial_channel
        for i in range(self.num_upsamples):
            ch = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(ch, k, d, style_dim))
            if i + 1 < self.num_upsamples:
                stride = math.prod(upsample_rates[i + 1 :])
                self.noise_convs.append(
                    nn.Conv1d(
                        spec_channels, ch, kernel_size=stride * 2, stride=stride, padding=(stride + 1) // 2
                    )
                )
                self.noise_res.append(AdaINResBlock1(ch, 7, [1, 3, 5], style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(spec_channels, ch, kernel_size=1))
                self.noise_res.append(AdaINResBlock1(ch, 11, [1, 3, 5], style_dim))
        self.post_n_fft = gen_istft_n_fft
        self.conv_post = weight_norm(nn.Conv1d(ch, spec_channels, 7, 1, padding=3))
        self.stft = ISTFT(gen_istft_n_fft, gen_istft_hop_size, gen_istft_n_fft)

    def forward(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        with torch.no_grad():
            f0_up = upsample_f0(f0, self.hop)
            har, _, _ = self.m_source(f0_up, deterministic, generators, draws)
            mag, phase = self.stft.transform(har.transpose(1, 2).squeeze(1))
            har = torch.cat([mag, phase], dim=1)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, 0.1)
            src = self.noise_res[i](self.noise_convs[i](har), s)
            x = self.ups[i](x)
            if i == self.num_upsamples - 1:
                # reflect-pad one sample on the left, written as a concatenation so that graph export
                # keeps the channel count known (ONNX's reflect Pad loses it)
                x = torch.cat([x[..., 1:2], x], dim=-1)
            x = x + src
            xs = self.resblocks[i * self.num_kernels](x, s)
            for j in range(1, self.num_kernels):
                xs += self.resblocks[i * self.num_kernels + j](x, s)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as in the original
        half = self.post_n_fft // 2 + 1
        return self.stft.inverse(torch.exp(x[:, :half, :]), torch.sin(x[:, half:, :]))
