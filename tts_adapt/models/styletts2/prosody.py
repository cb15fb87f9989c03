"""Prosody predictor: durations from text + prosodic style, then F0 and energy (N) per frame."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import AdainResBlk1d, AdaLayerNorm, LinearNorm, run_lstm


class DurationEncoder(nn.Module):
    """Alternating BiLSTMs and style-conditioned layer norms; the style is re-appended after each norm.

    ``lstms`` holds [LSTM, AdaLayerNorm] × nlayers, the official layout (and key numbering).
    """

    def __init__(self, sty_dim: int, d_model: int, nlayers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.lstms = nn.ModuleList()
        for _ in range(nlayers):
            self.lstms.append(
                nn.LSTM(d_model + sty_dim, d_model // 2, num_layers=1, batch_first=True, bidirectional=True)
            )
            self.lstms.append(AdaLayerNorm(sty_dim, d_model))
        self.dropout = dropout
        self.d_model = d_model
        self.sty_dim = sty_dim

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, text_lengths: torch.Tensor, m: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, C, T]`` text features, ``style [B, S]`` -> ``[B, T, C + S]``."""
        total = x.shape[-1]
        pad = m.unsqueeze(-1)  # [B, T, 1]
        s = style.unsqueeze(1).expand(-1, total, -1)  # [B, T, S]
        h = torch.cat([x.transpose(1, 2), s], dim=-1).masked_fill(pad, 0.0)
        for block in self.lstms:
            if isinstance(block, AdaLayerNorm):
                h = block(h, style)
                h = torch.cat([h, s], dim=-1).masked_fill(pad, 0.0)
            else:
                h = run_lstm(block, h, text_lengths, total=total)
                h = F.dropout(h, p=self.dropout, training=self.training)
        return h


class ProsodyPredictor(nn.Module):
    def __init__(
        self, style_dim: int, d_hid: int, nlayers: int, max_dur: int = 50, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.text_encoder = DurationEncoder(
            sty_dim=style_dim, d_model=d_hid, nlayers=nlayers, dropout=dropout
        )
        self.lstm = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.duration_proj = LinearNorm(d_hid, max_dur)
        self.shared = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.F0 = self._branch(d_hid, style_dim, dropout)
        self.N = self._branch(d_hid, style_dim, dropout)
        self.F0_proj = nn.Conv1d(d_hid // 2, 1, 1, 1, 0)
        self.N_proj = nn.Conv1d(d_hid // 2, 1, 1, 1, 0)

    @staticmethod
    def _branch(d_hid: int, style_dim: int, dropout: float) -> nn.ModuleList:
        return nn.ModuleList(
            [
                AdainResBlk1d(d_hid, d_hid, style_dim, dropout_p=dropout),
                AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True, dropout_p=dropout),
                AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim, dropout_p=dropout),
            ]
        )

    def forward(
        self,
        texts: torch.Tensor,
        style: torch.Tensor,
        text_lengths: torch.Tensor,
        alignment: torch.Tensor,
        m: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: duration logits ``[B, T, max_dur]`` and frame-aligned features ``en``."""
        d = self.text_encoder(texts, style, text_lengths, m)
        x = run_lstm(self.lstm, d, text_lengths, total=d.shape[1])
        duration = self.duration_proj(F.dropout(x, 0.5, training=self.training))
        en = d.transpose(-1, -2) @ alignment
        return duration.squeeze(-1), en

    def durations(self, d: torch.Tensor, text_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Expected frames per token: ``sigmoid(logits).sum(-1)`` (the inference notebook's estimate)."""
        x = run_lstm(self.lstm, d, text_lengths, total=d.shape[1])
        return torch.sigmoid(self.duration_proj(x)).sum(dim=-1)

    def F0Ntrain(self, x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame features ``[B, C + S, T]`` -> F0 and energy curves ``[B, 2T]``."""
        h, _ = self.shared(x.transpose(-1, -2))
        f0 = h.transpose(-1, -2)
        for block in self.F0:
            f0 = block(f0, s)
        n = h.transpose(-1, -2)
        for block in self.N:
            n = block(n, s)
        return self.F0_proj(f0).squeeze(1), self.N_proj(n).squeeze(1)
