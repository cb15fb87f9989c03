"""The style-diffusion denoiser: a small transformer over [noisy style ; PL-BERT token features].

The official multi-speaker model (``StyleTransformer1d``) predicts a denoised style vector from a noisy
one. The noisy style (one vector per utterance) is broadcast over the token axis and concatenated with
the PL-BERT hidden states, then every block gets the same "mapping" vector (time embedding + reference
style) added before it, and its layer norms are modulated by the reference style. The sequence is
averaged at the end, so the output is again one vector per utterance.

Module and parameter names follow the official ones (``blocks.N.attention.norm.fc``, ``to_time.0.0.weights``,
``to_out.1`` ...) so the published checkpoint loads key-for-key.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StyleAdaLayerNorm(nn.Module):
    """Layer norm without affine weights whose gain ``1 + gamma`` and bias ``beta`` come from the style."""

    def __init__(self, style_dim: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        # x: [B, T, C], style: [B, style_dim]; gamma comes first in fc's output, then beta.
        gamma, beta = self.fc(style).unsqueeze(1).chunk(2, dim=-1)
        return (1 + gamma) * F.layer_norm(x, (self.channels,), eps=self.eps) + beta


class MultiHeadOutput(nn.Module):
    """Scaled dot-product attention over pre-projected q, k, v plus the output projection.

    Kept as its own module because the official checkpoint nests the output projection one level
    deeper (``attention.attention.to_out``).
    """

    def __init__(self, features: int, num_heads: int, head_features: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = head_features**-0.5
        self.to_out = nn.Linear(num_heads * head_features, features)

    def _split(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = self._split(q), self._split(k), self._split(v)
        # The official code scales the logits after the q·k product (not q before it).
        attn = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2)
        return self.to_out(out.reshape(out.shape[0], out.shape[1], -1))


class StyleSelfAttention(nn.Module):
    """Self-attention whose query and key/value inputs are normalised by two separate style-AdaLNs."""

    def __init__(self, features: int, style_dim: int, num_heads: int, head_features: int) -> None:
        super().__init__()
        mid = num_heads * head_features
        self.norm = StyleAdaLayerNorm(style_dim, features)
        self.norm_context = StyleAdaLayerNorm(style_dim, features)
        self.to_q = nn.Linear(features, mid, bias=False)
        self.to_kv = nn.Linear(features, 2 * mid, bias=False)
        self.attention = MultiHeadOutput(features, num_heads, head_features)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        q = self.to_q(self.norm(x, style))
        k, v = self.to_kv(self.norm_context(x, style)).chunk(2, dim=-1)
        return self.attention(q, k, v)


class StyleTransformerBlock(nn.Module):
    """Pre-norm residual block: style self-attention then a GELU feed-forward (no norm before it)."""

    def __init__(
        self, features: int, style_dim: int, num_heads: int, head_features: int, multiplier: int
    ) -> None:
        super().__init__()
        self.attention = StyleSelfAttention(features, style_dim, num_heads, head_features)
        self.feed_forward = nn.Sequential(
            nn.Linear(features, features * multiplier),
            nn.GELU(),
            nn.Linear(features * multiplier, features),
        )

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = x + self.attention(x, style)
        return x + self.feed_forward(x)


class LearnedFourierTime(nn.Module):
    """Continuous-time embedding ``[t, sin(2π t w), cos(2π t w)]`` with learned frequencies ``weights``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding dim must be even, got {dim}")
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, t: Tensor) -> Tensor:
        t = t.unsqueeze(-1)
        freqs = t * self.weights.unsqueeze(0) * 2 * math.pi
        return torch.cat([t, freqs.sin(), freqs.cos()], dim=-1)


class FixedEmbedding(nn.Module):
    """A learned table of per-position vectors; it replaces the text features for the unconditional branch."""

    def __init__(self, max_length: int, features: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.embedding = nn.Embedding(max_length, features)

    def forward(self, like: Tensor) -> Tensor:
        batch, length = like.shape[0], like.shape[1]
        if length > self.max_length:
            raise ValueError(f"text has {length} tokens; the diffusion table holds {self.max_length}")
        table = self.embedding(torch.arange(length, device=like.device))
        return table.unsqueeze(0).expand(batch, -1, -1)


class _ChannelsFirst(nn.Module):
    """[B, T, C] -> [B, C, T], so the output projection can be the official 1x1 Conv1d (``to_out.1``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2)


def random_batch_mask(batch: int, proba: float, device: torch.device) -> Tensor:
    """True for the batch items whose text embedding is dropped (classifier-free-guidance training).

    Draws from the global RNG exactly as the official code does (one Bernoulli draw of shape [B, 1, 1]),
    so seeded runs reproduce it; probabilities 0 and 1 draw nothing.
    """
    shape = (batch, 1, 1)
    if proba >= 1:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if proba <= 0:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    return torch.bernoulli(torch.full(shape, proba, device=device)).to(torch.bool)


def masked_and_guided(
    run: Callable[[Tensor], Tensor],
    embedding: Tensor,
    fixed: Tensor,
    embedding_mask: Tensor | None,
    embedding_mask_proba: float,
    embedding_scale: float,
) -> Tensor:
    """The text-conditioning rules both denoisers share: replace the text features of masked items by
    the fixed embedding (training), then apply classifier-free guidance (sampling)."""
    if embedding_mask is not None:
        embedding = torch.where(embedding_mask.to(torch.bool).view(-1, 1, 1), fixed, embedding)
    elif embedding_mask_proba > 0.0:
        mask = random_batch_mask(embedding.shape[0], embedding_mask_proba, embedding.device)
        embedding = torch.where(mask, fixed, embedding)
    if embedding_scale == 1.0:
        return run(embedding)
    out = run(embedding)
    out_uncond = run(fixed)
    return out_uncond + (out - out_uncond) * embedding_scale


class StyleTransformer1d(nn.Module):
    """Multi-speaker denoiser conditioned on PL-BERT features (``embedding``) and a reference style.

    Args:
        num_layers, num_heads, head_features, multiplier: the config's ``diffusion.transformer`` section.
        channels: width of the diffused style vector (``2 * style_dim``).
        context_embedding_features: PL-BERT hidden size.
        context_features: width of the reference style used by the AdaLNs and the mapping (``2 * style_dim``).
        embedding_max_length: PL-BERT max positions (size of the fixed embedding table).
    """

    def __init__(
        self,
        num_layers: int,
        channels: int,
        num_heads: int,
        head_features: int,
        multiplier: int,
        context_embedding_features: int,
        context_features: int,
        embedding_max_length: int = 512,
    ) -> None:
        super().__init__()
        width = channels + context_embedding_features
        self.channels = channels
        self.blocks = nn.ModuleList(
            StyleTransformerBlock(width, context_features, num_heads, head_features, multiplier)
            for _ in range(num_layers)
        )
        self.to_out = nn.Sequential(_ChannelsFirst(), nn.Conv1d(width, channels, kernel_size=1))
        self.to_mapping = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU()
        )
        self.to_time = nn.Sequential(
            nn.Sequential(LearnedFourierTime(channels), nn.Linear(channels + 1, width)),
            nn.GELU(),
        )
        self.to_features = nn.Sequential(nn.Linear(context_features, width), nn.GELU())
        self.fixed_embedding = FixedEmbedding(embedding_max_length, context_embedding_features)

    def mapping(self, time: Tensor, features: Tensor) -> Tensor:
        """The per-utterance conditioning vector added before every block: MLP(time emb + style emb)."""
        return self.to_mapping(self.to_time(time) + self.to_features(features))

    def run(self, x: Tensor, time: Tensor, embedding: Tensor, features: Tensor) -> Tensor:
        """One denoiser pass. x: [B, 1, channels], time: [B], embedding: [B, T, E] -> [B, 1, channels]."""
        length = embedding.shape[1]
        mapping = self.mapping(time, features).unsqueeze(1).expand(-1, length, -1)
        h = torch.cat([x.expand(-1, length, -1), embedding], dim=-1)
        for block in self.blocks:
            h = block(h + mapping, features)
        h = h.mean(dim=1, keepdim=True)
        return self.to_out(h).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        time: Tensor,
        *,
        embedding: Tensor,
        features: Tensor,
        embedding_mask_proba: float = 0.0,
        embedding_scale: float = 1.0,
        embedding_mask: Tensor | None = None,
    ) -> Tensor:
        """Denoiser output for noisy style ``x`` at (preconditioned) time ``time``.

        ``embedding_mask_proba > 0`` replaces the text features of random batch items by the fixed
        embedding (used for the training loss); ``embedding_mask`` (bool ``[B]``) names those items
        explicitly instead of drawing them, which keeps the draw per utterance (exact multi-process
        training). ``embedding_scale != 1`` applies classifier-free guidance,
        ``uncond + scale * (cond - uncond)``.
        """
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.channels:
            raise ValueError(f"diffusion input must be [B, 1, {self.channels}], got {list(x.shape)}")
        batch = x.shape[0]
        if embedding.dim() != 3 or embedding.shape[0] != batch:
            raise ValueError(
                f"diffusion embedding must be PL-BERT features [{batch}, T, E], got {list(embedding.shape)}"
            )
        if features.shape != (batch, self.to_features[0].in_features):
            raise ValueError(
                f"diffusion features must be reference styles [{batch}, "
                f"{self.to_features[0].in_features}], got {list(features.shape)}"
            )
        return masked_and_guided(
            lambda emb: self.run(x, time, emb, features),
            embedding,
            self.fixed_embedding(embedding).to(embedding.dtype),
            embedding_mask,
            embedding_mask_proba,
            embedding_scale,
        )


class SelfAttention(nn.Module):
    """Self-attention with ordinary (affine) layer norms on the query and key/value paths."""

    def __init__(self, features: int, num_heads: int, head_features: int) -> None:
        super().__init__()
        mid = num_heads * head_features
        self.norm = nn.LayerNorm(features)
        self.norm_context = nn.LayerNorm(features)
        self.to_q = nn.Linear(features, mid, bias=False)
        self.to_kv = nn.Linear(features, 2 * mid, bias=False)
        self.attention = MultiHeadOutput(features, num_heads, head_features)

    def forward(self, x: Tensor) -> Tensor:
        q = self.to_q(self.norm(x))
        k, v = self.to_kv(self.norm_context(x)).chunk(2, dim=-1)
        return self.attention(q, k, v)


class TransformerBlock(nn.Module):
    def __init__(self, features: int, num_heads: int, head_features: int, multiplier: int) -> None:
        super().__init__()
        self.attention = SelfAttention(features, num_heads, head_features)
        self.feed_forward = nn.Sequential(
            nn.Linear(features, features * multiplier),
            nn.GELU(),
            nn.Linear(features * multiplier, features),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(x)
        return x + self.feed_forward(x)


class Transformer1d(nn.Module):
    """Single-speaker denoiser (``multispeaker: false``, e.g. the LJSpeech model): as
    :class:`StyleTransformer1d` without a reference style (plain layer norms, time-only mapping)."""

    def __init__(
        self,
        num_layers: int,
        channels: int,
        num_heads: int,
        head_features: int,
        multiplier: int,
        context_embedding_features: int,
        embedding_max_length: int = 512,
    ) -> None:
        super().__init__()
        width = channels + context_embedding_features
        self.channels = channels
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, head_features, multiplier) for _ in range(num_layers)
        )
        self.to_out = nn.Sequential(_ChannelsFirst(), nn.Conv1d(width, channels, kernel_size=1))
        self.to_mapping = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU()
        )
        self.to_time = nn.Sequential(
            nn.Sequential(LearnedFourierTime(channels), nn.Linear(channels + 1, width)),
            nn.GELU(),
        )
        self.fixed_embedding = FixedEmbedding(embedding_max_length, context_embedding_features)

    def run(self, x: Tensor, time: Tensor, embedding: Tensor) -> Tensor:
        length = embedding.shape[1]
        mapping = self.to_mapping(self.to_time(time)).unsqueeze(1).expand(-1, length, -1)
        h = torch.cat([x.expand(-1, length, -1), embedding], dim=-1)
        for block in self.blocks:
            h = block(h + mapping)
        h = h.mean(dim=1, keepdim=True)
        return self.to_out(h).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        time: Tensor,
        *,
        embedding: Tensor,
        features: Tensor | None = None,
        embedding_mask_proba: float = 0.0,
        embedding_scale: float = 1.0,
        embedding_mask: Tensor | None = None,
    ) -> Tensor:
        """As :meth:`StyleTransformer1d.forward`; ``features`` is accepted and ignored (no reference)."""
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.channels:
            raise ValueError(f"diffusion input must be [B, 1, {self.channels}], got {list(x.shape)}")
        return masked_and_guided(
            lambda emb: self.run(x, time, emb),
            embedding,
            self.fixed_embedding(embedding).to(embedding.dtype),
            embedding_mask,
            embedding_mask_proba,
            embedding_scale,
        )
