"""Style encoders: a reference mel -> one style vector (acoustic or prosodic, same architecture).

Official quirk kept on purpose: channels grow from ``dim_in`` by doubling, capped at ``hidden_dim`` (the
builder passes ``hidden_dim`` as ``max_conv_dim``; the config's own ``max_conv_dim`` is ignored).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .norm import spectral_norm

# Four halvings then an unpadded 5x5 conv: ceil(T / 16) must be at least 5.
MIN_FRAMES = 65


class LearnedDownSample(nn.Module):
    """Depthwise strided conv that halves both mel axes on the residual path (key ``conv.*``)."""

    def __init__(self, dim_in: int) -> None:
        super().__init__()
        self.conv = spectral_norm(
            nn.Conv2d(dim_in, dim_in, kernel_size=3, stride=2, groups=dim_in, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling; an odd time length first repeats its last frame (a pad of 0 or 1 frames,
    written without a branch on the shape so that an exported graph keeps the length dynamic)."""
    return F.avg_pool2d(F.pad(x, (0, x.shape[-1] % 2, 0, 0), mode="replicate"), 2)


class ResBlk(nn.Module):
    """Pre-activation residual block that halves resolution (no normalisation, as configured officially)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.learned_sc = dim_in != dim_out
        self.downsample_res = LearnedDownSample(dim_in)
        self.conv1 = spectral_norm(nn.Conv2d(dim_in, dim_in, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(dim_in, dim_out, 3, 1, 1))
        if self.learned_sc:
            self.conv1x1 = spectral_norm(nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sc = self.conv1x1(x) if self.learned_sc else x
        sc = _halve(sc)
        r = self.conv1(F.leaky_relu(x, 0.2))
        r = self.conv2(F.leaky_relu(self.downsample_res(r), 0.2))
        return (sc + r) / math.sqrt(2)


class StyleEncoder(nn.Module):
    def __init__(
        self, dim_in: int = 48, style_dim: int = 48, max_conv_dim: int = 384, repeat_num: int = 4
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = [spectral_norm(nn.Conv2d(1, dim_in, 3, 1, 1))]
        dim_out = dim_in
        for _ in range(repeat_num):
            dim_out = min(dim_in * 2, max_conv_dim)
            blocks.append(ResBlk(dim_in, dim_out))
            dim_in = dim_out
        blocks += [
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(dim_out, dim_out, 5, 1, 0)),
            nn.AdaptiveAvgPool2d(1),
            nn.LeakyReLU(0.2),
        ]
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.Linear(dim_out, style_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 1, n_mels, T]`` -> ``[B, style_dim]``."""
        if x.shape[-1] < MIN_FRAMES:
            raise ValueError(
                f"reference is too short for the style encoder: {x.shape[-1]} mel frames, need at least "
                f"{MIN_FRAMES} (about 0.8 s of speech after trimming silence)"
            )
        h = self.shared(x)
        return self.unshared(h.flatten(1))
