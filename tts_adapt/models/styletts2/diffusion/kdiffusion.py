"""Karras et al. (2022, "EDM") preconditioning and training loss around the style denoiser.

``sigma_data`` (the standard deviation of the clean styles) is a plain float attribute, not a buffer:
the official checkpoint does not store it, it comes from the ``config.yml`` shipped with the checkpoint
(and official training overwrites it with a running estimate). Keeping it out of the state dict is what
lets the official state dict load strictly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LogNormalDistribution:
    """Training noise levels: ``sigma = exp(mean + std * N(0, 1))``, one per batch item."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean = float(mean)
        self.std = float(std)

    def __call__(self, num_samples: int, device: torch.device | str = "cpu") -> Tensor:
        # Drawn in the default dtype from the global RNG, as the official code does, so seeded runs agree.
        normal = self.mean + self.std * torch.randn((num_samples,), device=device)
        return normal.exp()

    def __repr__(self) -> str:
        return f"LogNormalDistribution(mean={self.mean}, std={self.std})"


def edm_scalings(sigmas: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM preconditioning ``(c_skip, c_out, c_in, c_noise)`` for noise levels ``sigmas`` [B]."""
    sd = float(sigma_data)
    c_noise = torch.log(sigmas) * 0.25
    s = sigmas.view(-1, 1, 1)
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd * (sd**2 + s**2) ** -0.5
    c_in = (s**2 + sd**2) ** -0.5
    return c_skip, c_out, c_in, c_noise


class KDiffusion(nn.Module):
    """EDM wrapper: ``D(x; sigma) = c_skip x + c_out F(c_in x, log(sigma) / 4)`` with ``F`` = ``net``.

    The attribute name ``net`` is part of the official state-dict layout (``diffusion.net.*``).
    """

    def __init__(self, net: nn.Module, sigma_distribution: LogNormalDistribution, sigma_data: float) -> None:
        super().__init__()
        self.net = net
        self.sigma_distribution = sigma_distribution
        self.sigma_data = float(sigma_data)

    def scale_weights(self, sigmas: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Preconditioning coefficients for per-item noise levels ``sigmas`` [B] (shaped [B, 1, 1])."""
        return edm_scalings(sigmas, self.sigma_data)

    def denoise_fn(
        self,
        x_noisy: Tensor,
        sigmas: Tensor | None = None,
        sigma: float | Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Denoised estimate of ``x_noisy`` [B, 1, C]; give per-item ``sigmas`` [B] or one scalar ``sigma``.

        Extra keyword arguments (``embedding``, ``features``, ``embedding_scale``,
        ``embedding_mask_proba``) go to the network.
        """
        if (sigmas is None) == (sigma is None):
            raise ValueError("denoise_fn needs exactly one of `sigmas` (per item) or `sigma` (scalar)")
        batch = x_noisy.shape[0]
        if sigmas is None:
            sigmas = torch.full((batch,), float(sigma), dtype=x_noisy.dtype, device=x_noisy.device)
        else:
            sigmas = sigmas.to(device=x_noisy.device)
            if sigmas.shape != (batch,):
                raise ValueError(f"sigmas must have shape [{batch}], got {list(sigmas.shape)}")
        c_skip, c_out, c_in, c_noise = self.scale_weights(sigmas)
        x_pred = self.net(c_in * x_noisy, c_noise, **kwargs)
        return c_skip * x_noisy + c_out * x_pred

    def loss_weight(self, sigmas: Tensor) -> Tensor:
        """Weighting ``(sigma^2 + sigma_data^2) / (sigma * sigma_data)^2``: unit loss scale at every sigma."""
        return (sigmas**2 + self.sigma_data**2) * (sigmas * self.sigma_data) ** -2

    def loss(
        self,
        x: Tensor,
        noise: Tensor | None = None,
        sigmas: Tensor | None = None,
        reduction: str = "mean",
        **kwargs,
    ) -> Tensor:
        """The official denoiser training loss: weighted MSE at log-normally drawn noise levels.

        Random draws follow the official order: sigmas, then the noise (``randn_like``), then (inside
        the network) the embedding mask. ``noise``/``sigmas`` may be given to make the loss deterministic.
        ``reduction="none"`` returns the per-item losses ``[B]`` whose mean is the official scalar.
        """
        batch = x.shape[0]
        if sigmas is None:
            sigmas = self.sigma_distribution(batch, device=x.device)
        sigmas = sigmas.to(device=x.device, dtype=x.dtype)
        if noise is None:
            noise = torch.randn_like(x)
        x_noisy = x + sigmas.view(-1, *([1] * (x.dim() - 1))) * noise
        x_denoised = self.denoise_fn(x_noisy, sigmas=sigmas, **kwargs)
        per_item = (x_denoised - x).pow(2).reshape(batch, -1).mean(dim=1) * self.loss_weight(sigmas)
        if reduction == "none":
            return per_item
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        return per_item.mean()

    def forward(self, x: Tensor, noise: Tensor | None = None, **kwargs) -> Tensor:
        """Same as :meth:`loss` (the official ``KDiffusion.__call__`` returns the loss)."""
        return self.loss(x, noise=noise, **kwargs)
