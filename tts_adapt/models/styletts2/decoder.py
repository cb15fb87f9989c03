"""Acoustic decoder: aligned text features + F0 + energy + acoustic style -> waveform.

The original design fixes the widths: 1024-channel blocks, a 512->64 text residual and a 512-channel
input to the generator, which is why the official model only runs with ``hidden_dim == 512`` and
``upsample_initial_channel == 512``. Here the text residual reads ``hidden_dim`` channels and the last
block feeds ``upsample_initial_channel``, which is the same thing for every config the official code can
run; ``block_channels``/``text_residual_channels`` (defaults 1024/64) only exist to build small models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .harmonic import HarmonicNoiseGenerator
from .hifigan import HiFiGANGenerator
from .istftnet import ISTFTNetGenerator
from .layers import AdainResBlk1d
from .norm import weight_norm
from .source import SourceDraws

BLOCK_CHANNELS = 1024
TEXT_RESIDUAL_CHANNELS = 64
#: Config keys of the ``harmonic`` decoder type (see :class:`HarmonicNoiseGenerator`).
HARMONIC_KEYS = ("n_harmonics", "envelope_bins", "noise_bands")


class Decoder(nn.Module):
    def __init__(
        self,
        dim_in: int = 512,
        style_dim: int = 64,
        resblock_kernel_sizes: list[int] = (3, 7, 11),
        upsample_rates: list[int] = (10, 5, 3, 2),
        upsample_initial_channel: int = 512,
        resblock_dilation_sizes: list[list[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        upsample_kernel_sizes: list[int] = (20, 10, 6, 4),
        type: str = "hifigan",
        gen_istft_n_fft: int | None = None,
        gen_istft_hop_size: int | None = None,
        sampling_rate: int = 24000,
        block_channels: int = BLOCK_CHANNELS,
        text_residual_channels: int = TEXT_RESIDUAL_CHANNELS,
        harmonic: dict | None = None,
    ) -> None:
        super().__init__()
        self.type = type
        w, extra = block_channels, 2 + text_residual_channels
        self.decode = nn.ModuleList()  # registered before ``encode``: the official key order
        self.encode = AdainResBlk1d(dim_in + 2, w, style_dim)
        self.decode.extend(
            [
                AdainResBlk1d(w + extra, w, style_dim),
                AdainResBlk1d(w + extra, w, style_dim),
                AdainResBlk1d(w + extra, w, style_dim),
                AdainResBlk1d(w + extra, upsample_initial_channel, style_dim, upsample=True),
            ]
        )
        self.F0_conv = weight_norm(nn.Conv1d(1, 1, kernel_size=3, stride=2, groups=1, padding=1))
        self.N_conv = weight_norm(nn.Conv1d(1, 1, kernel_size=3, stride=2, groups=1, padding=1))
        self.asr_res = nn.Sequential(weight_norm(nn.Conv1d(dim_in, text_residual_channels, kernel_size=1)))
        common = dict(
            style_dim=style_dim,
            resblock_kernel_sizes=list(resblock_kernel_sizes),
            upsample_rates=list(upsample_rates),
            upsample_initial_channel=upsample_initial_channel,
            resblock_dilation_sizes=[list(d) for d in resblock_dilation_sizes],
            upsample_kernel_sizes=list(upsample_kernel_sizes),
            sampling_rate=sampling_rate,
        )
        if type == "hifigan":
            self.generator: nn.Module = HiFiGANGenerator(**common)
        elif type == "istftnet":
            if gen_istft_n_fft is None or gen_istft_hop_size is None:
                raise ValueError(
                    "decoder type 'istftnet' needs gen_istft_n_fft and gen_istft_hop_size in the config"
                )
            self.generator = ISTFTNetGenerator(
                **common, gen_istft_n_fft=gen_istft_n_fft, gen_istft_hop_size=gen_istft_hop_size
            )
        elif type == "harmonic":
            self.generator = HarmonicNoiseGenerator(**common, **(harmonic or {}))
        else:
            raise ValueError(
                f"model_params.decoder.type must be 'hifigan', 'istftnet' or 'harmonic', got {type!r}"
            )

    @property
    def samples_per_frame(self) -> int:
        """Output samples per input frame (the F0 curve runs at twice the frame rate)."""
        return self.generator.hop * 2

    def _smooth(self, curve: torch.Tensor, choices: tuple[int, ...]) -> torch.Tensor:
        """Training-time augmentation: box-filter the curve with a randomly chosen width (0 = none)."""
        width = choices[int(torch.randint(len(choices), (1,)))]
        if not width:
            return curve
        kernel = torch.ones(1, 1, width, dtype=curve.dtype, device=curve.device)
        return F.conv1d(curve.unsqueeze(1), kernel, padding=width // 2).squeeze(1) / width

    def forward(
        self,
        asr: torch.Tensor,
        F0_curve: torch.Tensor,
        N: torch.Tensor,
        s: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        """``asr [B, 512, T]``, ``F0_curve``/``N [B, 2T]``, ``s [B, style_dim]`` -> ``[B, 1, samples]``.

        ``deterministic`` zeroes the source's random phases and noise; ``generators`` (one per row)
        draw them per utterance instead of from the global RNG; ``draws`` gives them explicitly.
        """
        if self.training:
            if getattr(self.generator, "smooth_f0_in_training", True):
                F0_curve = self._smooth(F0_curve, (0, 3, 7))
            N = self._smooth(N, (0, 3, 7, 15))
        f0 = self.F0_conv(F0_curve.unsqueeze(1))
        n = self.N_conv(N.unsqueeze(1))
        x = self.encode(torch.cat([asr, f0, n], dim=1), s)
        asr_res = self.asr_res(asr)
        residual = True
        for block in self.decode:
            if residual:
                x = torch.cat([x, asr_res, f0, n], dim=1)
            x = block(x, s)
            if block.upsample:
                residual = False
        return self.generator(x, s, F0_curve, deterministic=deterministic, generators=generators, draws=draws)
