"""StyleTTS 2 style diffusion: samples a [acoustic ; prosodic] style vector from PL-BERT text features.

``StyleDiffusion`` has exactly the official ``diffusion`` module's state dict: the denoiser appears
twice, as ``diffusion.net.*`` (inside the EDM wrapper) and ``unet.*`` (the same module object). When
a state dict holds different values under the two names, ``load_state_dict`` copies ``diffusion.net.*``
first and ``unet.*`` second into the shared tensors, so ``unet.*`` wins -- the same as the official
module, which registers the two names in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from .kdiffusion import KDiffusion, LogNormalDistribution
from .sampler import ADPM2Sampler, DiffusionSampler, KarrasSchedule
from .transformer import StyleTransformer1d, Transformer1d

__all__ = [
    "ADPM2Sampler",
    "DiffusionSampler",
    "KDiffusion",
    "KarrasSchedule",
    "LogNormalDistribution",
    "StyleDiffusion",
    "StyleTransformer1d",
    "Transformer1d",
    "build_diffusion",
]

# The official inference schedule (Karras, 5 points by default).
SIGMA_MIN, SIGMA_MAX, RHO = 1e-4, 3.0, 9.0

_TRANSFORMER_KEYS = ("num_layers", "num_heads", "head_features", "multiplier")
_DIST_KEYS = ("sigma_data", "mean", "std")


class StyleDiffusion(nn.Module):
    """The official ``diffusion`` module: EDM denoiser (``.diffusion``), its network (``.unet``), sampler.

    ``sigma_data`` is a settable float (not in the state dict); set it from the checkpoint's config.
    """

    def __init__(
        self,
        net: nn.Module,
        sigma_data: float,
        dist_mean: float,
        dist_std: float,
        embedding_mask_proba: float = 0.1,
    ) -> None:
        super().__init__()
        # Registration order matters: it fixes the state-dict order (diffusion.net.* before unet.*).
        self.diffusion = KDiffusion(net, LogNormalDistribution(dist_mean, dist_std), sigma_data)
        self.unet = net
        self.embedding_mask_proba = float(embedding_mask_proba)

    @property
    def sigma_data(self) -> float:
        return self.diffusion.sigma_data

    @sigma_data.setter
    def sigma_data(self, value: float) -> None:
        self.diffusion.sigma_data = float(value)

    @property
    def channels(self) -> int:
        """Width of the sampled style (``2 * style_dim``)."""
        return self.unet.channels

    def denoise_fn(
        self, x_noisy: Tensor, sigmas: Tensor | None = None, sigma: float | None = None, **kwargs
    ) -> Tensor:
        """EDM denoiser ``D(x; sigma)``; kwargs: ``embedding``, ``features``, ``embedding_scale``."""
        return self.diffusion.denoise_fn(x_noisy, sigmas=sigmas, sigma=sigma, **kwargs)

    def loss(
        self,
        styles: Tensor,
        embedding: Tensor,
        features: Tensor | None,
        *,
        noise: Tensor | None = None,
        sigmas: Tensor | None = None,
        embedding_mask_proba: float | None = None,
        embedding_mask: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """Official EDM training loss (scalar, or ``[B]`` with ``reduction="none"``) for target styles
        ``[B, C]`` or ``[B, 1, C]``. ``embedding_mask`` (bool ``[B]``) fixes which items are masked.

        ``embedding_mask_proba`` defaults to the config value (0.1 for LibriTTS): the text features of
        that fraction of the batch are replaced by the fixed embedding, which trains the unconditional
        branch used by classifier-free guidance. Pass 0 to disable.
        """
        if styles.dim() == 2:
            styles = styles.unsqueeze(1)
        proba = self.embedding_mask_proba if embedding_mask_proba is None else float(embedding_mask_proba)
        return self.diffusion.loss(
            styles,
            noise=noise,
            sigmas=sigmas,
            embedding=embedding,
            features=features,
            embedding_mask_proba=proba,
            embedding_mask=embedding_mask,
            reduction=reduction,
        )

    def forward(self, styles: Tensor, embedding: Tensor, features: Tensor | None, **kwargs) -> Tensor:
        """Same as :meth:`loss`, like the official module's call."""
        return self.loss(styles, embedding, features, **kwargs)

    def sample(
        self,
        noise: Tensor,
        embedding: Tensor,
        features: Tensor | None,
        num_steps: int = 5,
        embedding_scale: float = 1.0,
        step_noises: Tensor | Sequence[Tensor] | None = None,
        sigma_min: float = SIGMA_MIN,
        sigma_max: float = SIGMA_MAX,
        rho: float = RHO,
        embedding_mask_proba: float = 0.0,
        embedding_mask: Tensor | None = None,
    ) -> Tensor:
        """Sample styles ``[B, 1, C]`` from ``noise`` ``[B, 1, C]`` (the official inference call).

        ``embedding``: PL-BERT hidden states ``[B, T, E]``;
        ``features``: reference style ``[B, C]`` (``None`` for a single-speaker model).
        ``step_noises`` (``[num_steps - 1, B, 1, C]`` or a list) replaces the per-step
        ``torch.randn_like`` draws; without it they come from the global RNG in the official order.
        ``embedding_mask_proba`` > 0 reproduces the official training-time sampler call (0.1 there), a
        fresh random mask at every denoiser call; ``embedding_mask`` fixes the masked items instead, bool
        ``[B]`` for every call or ``[2 * (num_steps - 1), B]`` one row per call.
        """
        if noise.dim() != 3 or noise.shape[1] != 1 or noise.shape[2] != self.channels:
            raise ValueError(f"noise must be [B, 1, {self.channels}], got {list(noise.shape)}")
        sampler = DiffusionSampler(
            self.diffusion, ADPM2Sampler(), KarrasSchedule(sigma_min, sigma_max, rho), clamp=False
        )
        return sampler(
            noise,
            num_steps,
            step_noises=step_noises,
            embedding=embedding,
            features=features,
            embedding_scale=embedding_scale,
            embedding_mask_proba=embedding_mask_proba,
            embedding_mask=embedding_mask,
        )


def _section(section: Mapping, keys: Sequence[str], name: str) -> dict:
    if not isinstance(section, Mapping):
        raise ValueError(f"model_params.diffusion.{name} must be a mapping, got {type(section).__name__}")
    missing = [k for k in keys if k not in section]
    if missing:
        raise ValueError(f"model_params.diffusion.{name} is missing {missing}")
    return dict(section)


# The official builder leaves StyleTransformer1d/Transformer1d at their default table size.
FIXED_EMBEDDING_ROWS = 512


def build_diffusion(
    style_dim: int,
    bert_hidden: int,
    bert_max_positions: int,
    transformer: Mapping,
    dist: Mapping,
    embedding_mask_proba: float,
    multispeaker: bool = True,
) -> StyleDiffusion:
    """Build the diffusion module from ``model_params.diffusion`` (``transformer``, ``dist``,
    ``embedding_mask_proba``), ``model_params.style_dim`` and the PL-BERT hidden size.

    ``bert_max_positions`` is accepted for symmetry but not used: the official builder never passes the
    table size to the transformer, so its fixed (unconditional) embedding always has 512 rows.
    """
    t = _section(transformer, _TRANSFORMER_KEYS, "transformer")
    unknown = sorted(set(t) - set(_TRANSFORMER_KEYS))
    if unknown:
        raise ValueError(
            f"model_params.diffusion.transformer has unsupported keys {unknown}; "
            f"expected only {list(_TRANSFORMER_KEYS)}"
        )
    d = _section(dist, _DIST_KEYS, "dist")
    channels = 2 * int(style_dim)
    common = dict(
        num_layers=int(t["num_layers"]),
        channels=channels,
        num_heads=int(t["num_heads"]),
        head_features=int(t["head_features"]),
        multiplier=int(t["multiplier"]),
        context_embedding_features=int(bert_hidden),
        embedding_max_length=FIXED_EMBEDDING_ROWS,
    )
    if multispeaker:
        net: nn.Module = StyleTransformer1d(**common, context_features=channels)
    else:
        net = Transformer1d(**common)
    return StyleDiffusion(
        net,
        sigma_data=float(d["sigma_data"]),
        dist_mean=float(d["mean"]),
        dist_std=float(d["std"]),
        embedding_mask_proba=float(embedding_mask_proba),
    )
