"""Neural source-filter excitation: a harmonic sine source driven by F0 (hn-NSF).

The official generator draws a random initial phase per harmonic and additive Gaussian noise. With
``deterministic=True`` both are zero (initial phase 0, no noise), which makes synthesis repeatable and
lets tests compare waveforms against references computed the same way. ``draws`` (a
:class:`SourceDraws`) supplies those random values explicitly, e.g. to run an exported graph and the
PyTorch model on the same noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SourceDraws:
    """The source's random values for one batch: initial phases ``[B, dim]`` (in cycles; the
    fundamental's is ignored) and standard-normal noise ``[B, samples, dim]``."""

    phases: torch.Tensor
    noise: torch.Tensor


def draw_source(batch: int, samples: int, dim: int = 9) -> SourceDraws:
    """Draws from torch's global RNG in the order and shapes :class:`SineGen` uses itself."""
    phases = torch.rand(batch, dim)
    return SourceDraws(phases, torch.randn(batch, samples, dim))


def upsample_f0(f0: torch.Tensor, hop: int) -> torch.Tensor:
    """F0 curve ``[B, T]`` -> per-sample F0 ``[B, T * hop, 1]``, as the generators feed the source."""
    return torch.repeat_interleave(f0.unsqueeze(1), hop, dim=-1).transpose(1, 2)


class SineGen(nn.Module):
    def __init__(
        self,
        sampling_rate: int,
        upsample_scale: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.upsample_scale = int(upsample_scale)
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    def _sines(
        self,
        f0_harmonics: torch.Tensor,
        deterministic: bool,
        generators: Sequence[torch.Generator] | None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        # Phase increments per sample, in cycles (the integer part never matters).
        rad = (f0_harmonics / self.sampling_rate) % 1
        if not deterministic:
            if draws is not None:
                initial = draws.phases.to(rad)
            elif generators is None:
                initial = torch.rand(f0_harmonics.shape[0], f0_harmonics.shape[2], device=rad.device)
            else:
                initial = torch.stack([torch.rand(self.dim, generator=g) for g in generators]).to(rad.device)
            # the fundamental always starts at phase 0; written without in-place indexing (exportable)
            initial = torch.cat([torch.zeros_like(initial[:, :1]), initial[:, 1:]], dim=1)
            rad = torch.cat([rad[:, :1, :] + initial.unsqueeze(1), rad[:, 1:, :]], dim=1)
        # Integrate at frame rate, then interpolate back: cheap and free of float32 cumsum drift over
        # hundreds of thousands of samples (the official trick, kept for identical numerics).
        scale = self.upsample_scale
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / scale, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad, dim=1) * 2 * math.pi
        phase = F.interpolate(phase.transpose(1, 2) * scale, scale_factor=scale, mode="linear").transpose(
            1, 2
        )
        return torch.sin(phase)

    def forward(
        self,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``f0 [B, L, 1]`` in Hz at the sample rate -> (sine waves ``[B, L, dim]``, uv, noise).

        ``generators`` (one CPU generator per batch row) draw each row's phases and noise on their own,
        so a row's output does not depend on the rest of the batch (exact data-parallel training).
        """
        harmonics = torch.arange(1, self.harmonic_num + 2, device=f0.device, dtype=torch.float32)
        fn = torch.multiply(f0, harmonics.view(1, 1, -1))
        sine_waves = self._sines(fn, deterministic, generators, draws) * self.sine_amp
        uv = (f0 > self.voiced_threshold).to(torch.float32)
        if deterministic:
            noise = torch.zeros_like(sine_waves)
        else:
            noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
            if draws is not None:
                gauss = draws.noise.to(sine_waves)
            elif generators is None:
                gauss = torch.randn_like(sine_waves)
            else:
                shape = sine_waves.shape[1:]
                gauss = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(sine_waves)
            noise = noise_amp * gauss
        return sine_waves * uv + noise, uv, noise


class SourceModuleHnNSF(nn.Module):
    """Merges the harmonics into one excitation: ``tanh(l_linear(sines))``."""

    def __init__(
        self,
        sampling_rate: int,
        upsample_scale: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        add_noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.sine_amp = sine_amp
        self.l_sin_gen = SineGen(
            sampling_rate, upsample_scale, harmonic_num, sine_amp, add_noise_std, voiced_threshold
        )
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(
        self,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            sines, uv, _ = self.l_sin_gen(f0, deterministic, generators, draws)
        merged = torch.tanh(self.l_linear(sines.to(self.l_linear.weight.dtype)))
        if deterministic or generators is not None or draws is not None:
            noise = torch.zeros_like(uv)
        else:
            # Unused by the generators, but drawn so a seeded run consumes the RNG like the original.
            noise = torch.randn_like(uv) * self.sine_amp / 3
        return merged, noise, uv
