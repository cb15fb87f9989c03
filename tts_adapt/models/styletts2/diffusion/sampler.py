"""Sampling styles from the denoiser: Karras noise schedule, ADPM2 steps, classifier-free guidance.

Faithful to the official sampler, including its quirks: ``num_steps`` schedule points are computed but
only ``num_steps - 1`` steps are taken (the result is left at noise level ``sigma_min``, not 0), and
every step adds fresh noise (``randn_like``) even the last one. The per-step noise comes from the global
RNG, one ``torch.randn_like(x)`` per step in the official order, so a seeded run reproduces the official
output; or it can be passed explicitly as ``step_noises``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .kdiffusion import KDiffusion

DenoiseFn = Callable[[Tensor, float], Tensor]


class KarrasSchedule:
    """Karras et al. (2022) eq. 5: ``num_steps`` noise levels from ``sigma_max`` to ``sigma_min``, then 0.

    Computed in float32 like the official schedule, so the levels are bit-identical to it.
    """

    def __init__(self, sigma_min: float, sigma_max: float, rho: float = 7.0) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.rho = float(rho)

    def __call__(self, num_steps: int, device: torch.device | str | None = None) -> Tensor:
        if num_steps < 2:
            raise ValueError(f"the Karras schedule needs num_steps >= 2, got {num_steps}")
        inv = 1.0 / self.rho
        ramp = torch.arange(num_steps, device=device, dtype=torch.float32) / (num_steps - 1)
        sigmas = (self.sigma_max**inv + ramp * (self.sigma_min**inv - self.sigma_max**inv)) ** self.rho
        return F.pad(sigmas, (0, 1), value=0.0)


def _check_step_noises(step_noises: Tensor | Sequence[Tensor], count: int, like: Tensor) -> list[Tensor]:
    noises = list(step_noises.unbind(0)) if isinstance(step_noises, Tensor) else list(step_noises)
    if len(noises) != count:
        raise ValueError(f"step_noises must hold num_steps - 1 = {count} tensors, got {len(noises)}")
    for i, n in enumerate(noises):
        if tuple(n.shape) != tuple(like.shape):
            raise ValueError(f"step_noises[{i}] has shape {list(n.shape)}, expected {list(like.shape)}")
    return [n.to(device=like.device, dtype=like.dtype) for n in noises]


class ADPM2Sampler:
    """Ancestral DPM-Solver-2 (second-order midpoint step, then ancestral noise) for EDM denoisers."""

    def __init__(self, rho: float = 1.0) -> None:
        self.rho = float(rho)

    @staticmethod
    def calls(num_steps: int) -> int:
        """Denoiser evaluations of a ``num_steps`` trajectory: two per step (point and midpoint)."""
        return 2 * (num_steps - 1)

    def step_sigmas(self, sigma: float, sigma_next: float) -> tuple[float, float, float]:
        """(sigma_up, sigma_down, sigma_mid): ancestral noise, deterministic target and midpoint levels."""
        sigma_up = math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2)
        sigma_down = math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0))
        r = self.rho
        sigma_mid = ((sigma ** (1 / r) + sigma_down ** (1 / r)) / 2) ** r
        return sigma_up, sigma_down, sigma_mid

    def step(self, x: Tensor, fn: DenoiseFn, sigma: float, sigma_next: float, noise: Tensor | None) -> Tensor:
        sigma_up, sigma_down, sigma_mid = self.step_sigmas(sigma, sigma_next)
        d = (x - fn(x, sigma)) / sigma
        x_mid = x + d * (sigma_mid - sigma)
        d_mid = (x_mid - fn(x_mid, sigma_mid)) / sigma_mid
        x = x + d_mid * (sigma_down - sigma)
        if noise is None:
            noise = torch.randn_like(x)
        return x + noise * sigma_up

    def __call__(
        self,
        noise: Tensor,
        fn: DenoiseFn,
        sigmas: Tensor,
        num_steps: int,
        step_noises: Tensor | Sequence[Tensor] | None = None,
    ) -> Tensor:
        levels = [float(s) for s in sigmas]
        noises: list[Tensor | None] = [None] * (num_steps - 1)
        if step_noises is not None:
            noises = list(_check_step_noises(step_noises, num_steps - 1, noise))
        x = levels[0] * noise
        for i in range(num_steps - 1):
            x = self.step(x, fn, levels[i], levels[i + 1], noises[i])
        return x


class DiffusionSampler:
    """Draws a style from ``noise`` with a schedule and sampler; keyword arguments go to the denoiser.

    Equivalent to the official ``DiffusionSampler(diffusion, sampler=..., sigma_schedule=..., clamp=...)``.
    """

    def __init__(
        self,
        diffusion: KDiffusion,
        sampler: ADPM2Sampler | None = None,
        sigma_schedule: KarrasSchedule | None = None,
        clamp: bool = False,
    ) -> None:
        self.diffusion = diffusion
        self.sampler = sampler if sampler is not None else ADPM2Sampler()
        self.sigma_schedule = sigma_schedule if sigma_schedule is not None else KarrasSchedule(1e-4, 3.0, 9.0)
        self.clamp = clamp

    def __call__(
        self,
        noise: Tensor,
        num_steps: int,
        step_noises: Tensor | Sequence[Tensor] | None = None,
        **kwargs,
    ) -> Tensor:
        """``noise`` [B, 1, C] -> sample [B, 1, C]. ``kwargs``: ``embedding``, ``features``,
        ``embedding_scale`` (classifier-free guidance when != 1), ``embedding_mask_proba``, and
        ``embedding_mask``: bool ``[B]`` (the same items masked at every denoiser call) or
        ``[calls, B]``, one row per call, as the official training-time sampler draws its mask anew
        at every call."""
        sigmas = self.sigma_schedule(num_steps, noise.device)
        masks = kwargs.get("embedding_mask")
        if masks is not None and masks.dim() == 2:
            calls = self.sampler.calls(num_steps)
            if masks.shape[0] != calls:
                raise ValueError(
                    f"embedding_mask has {masks.shape[0]} rows; a {num_steps}-step trajectory makes {calls} "
                    "denoiser calls"
                )
            rows = iter(masks.unbind(0))

            def fn(x: Tensor, sigma: float) -> Tensor:
                return self.diffusion.denoise_fn(x, sigma=sigma, **{**kwargs, "embedding_mask": next(rows)})

        else:

            def fn(x: Tensor, sigma: float) -> Tensor:
                return self.diffusion.denoise_fn(x, sigma=sigma, **kwargs)

        x = self.sampler(noise, fn, sigmas, num_steps, step_noises=step_noises)
        return x.clamp(-1.0, 1.0) if self.clamp else x
