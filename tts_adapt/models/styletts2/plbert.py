"""PL-BERT: an ALBERT encoder over phoneme ids (no dependency on ``transformers``).

ALBERT factorises the embedding (``embedding_size`` < ``hidden_size``) and shares one transformer layer
across all ``num_hidden_layers`` steps. Module and parameter names follow Hugging Face's ``AlbertModel``
because the official checkpoint stores PL-BERT under those keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class AlbertSettings:
    vocab_size: int = 178
    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 2048
    max_position_embeddings: int = 512
    num_hidden_layers: int = 12
    embedding_size: int = 128
    # ALBERT's defaults. PL-BERT configs say ``dropout: 0.1``, which is not an ALBERT field and so never
    # reached the model: the official PL-BERT runs without dropout, in training too.
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    num_hidden_groups: int = 1
    inner_group_num: int = 1

    @classmethod
    def from_dict(cls, params: dict) -> AlbertSettings:
        """Accepts PL-BERT ``model_params``; keys we do not model (e.g. ``hidden_act``) must be defaults."""
        known = {f.name for f in fields(cls)}
        act = params.get("hidden_act", "gelu_new")
        if act != "gelu_new":
            raise ValueError(f"PL-BERT hidden_act {act!r} is not supported (expected 'gelu_new')")
        return cls(**{k: v for k, v in params.items() if k in known})


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU that ALBERT uses."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class AlbertEmbeddings(nn.Module):
    def __init__(self, cfg: AlbertSettings) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.embedding_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.embedding_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        self.LayerNorm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(ids)
        h = self.word_embeddings(ids) + self.token_type_embeddings(token_type_ids)
        h = h + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(h))


class AlbertAttention(nn.Module):
    def __init__(self, cfg: AlbertSettings) -> None:
        super().__init__()
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError(
                f"PL-BERT hidden_size {cfg.hidden_size} is not divisible by num_attention_heads "
                f"{cfg.num_attention_heads}"
            )
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.dropout_p = cfg.attention_probs_dropout_prob
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.output_dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self._split(self.query(h)), self._split(self.key(h)), self._split(self.value(h))
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout_p if self.training else 0.0
        )
        ctx = ctx.transpose(1, 2).reshape(h.shape)
        return self.LayerNorm(h + self.output_dropout(self.dense(ctx)))


class AlbertLayer(nn.Module):
    def __init__(self, cfg: AlbertSettings) -> None:
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attention = AlbertAttention(cfg)
        self.ffn = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ffn_output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        a = self.attention(h, bias)
        f = self.dropout(self.ffn_output(gelu_new(self.ffn(a))))
        return self.full_layer_layer_norm(f + a)


class AlbertLayerGroup(nn.Module):
    def __init__(self, cfg: AlbertSettings) -> None:
        super().__init__()
        self.albert_layers = nn.ModuleList(AlbertLayer(cfg) for _ in range(cfg.inner_group_num))

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        for layer in self.albert_layers:
            h = layer(h, bias)
        return h


class AlbertTransformer(nn.Module):
    def __init__(self, cfg: AlbertSettings) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding_hidden_mapping_in = nn.Linear(cfg.embedding_size, cfg.hidden_size)
        self.albert_layer_groups = nn.ModuleList(AlbertLayerGroup(cfg) for _ in range(cfg.num_hidden_groups))

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        h = self.embedding_hidden_mapping_in(h)
        per_group = self.cfg.num_hidden_layers / self.cfg.num_hidden_groups
        for i in range(self.cfg.num_hidden_layers):
            # The same weights are applied at every depth: ALBERT's cross-layer sharing.
            h = self.albert_layer_groups[int(i / per_group)](h, bias)
        return h


class PLBert(nn.Module):
    """``PLBert(settings)(ids, attention_mask)`` -> last hidden state ``[B, T, hidden_size]``."""

    #: Never run (StyleTTS 2 reads the last hidden state only): no default adapter target.
    gradient_free_children: tuple[str, ...] = ("pooler",)

    def __init__(self, settings: AlbertSettings | dict | None = None) -> None:
        super().__init__()
        if settings is None:
            settings = AlbertSettings()
        elif isinstance(settings, dict):
            settings = AlbertSettings.from_dict(settings)
        self.config = settings
        self.embeddings = AlbertEmbeddings(settings)
        self.encoder = AlbertTransformer(settings)
        # Unused by StyleTTS 2 but part of the checkpoint.
        self.pooler = nn.Linear(settings.hidden_size, settings.hidden_size)
        self.pooler_activation = nn.Tanh()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.embeddings(input_ids, token_type_ids)
        bias = None
        if attention_mask is not None:
            # Additive key mask: masked keys get the most negative finite value, as Hugging Face does.
            keep = attention_mask.to(torch.bool)[:, None, None, :]
            bias = torch.zeros(keep.shape, dtype=h.dtype, device=h.device).masked_fill(
                ~keep, torch.finfo(h.dtype).min
            )
        return self.encoder(h, bias)
