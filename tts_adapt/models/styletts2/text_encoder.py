"""Acoustic text encoder: phoneme embeddings -> CNN stack -> BiLSTM, aligned later to frames."""

from __future__ import annotations

import torch
from torch import nn

from .layers import ChannelLayerNorm, run_lstm
from .norm import weight_norm


class TextEncoder(nn.Module):
    def __init__(
        self, channels: int, kernel_size: int, depth: int, n_symbols: int, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        padding = (kernel_size - 1) // 2
        # Sequential(conv, norm, activation, dropout): indices 0 and 1 carry the official keys.
        self.cnn = nn.ModuleList(
            nn.Sequential(
                weight_norm(nn.Conv1d(channels, channels, kernel_size=kernel_size, padding=padding)),
                ChannelLayerNorm(channels),
                nn.LeakyReLU(0.2),
                nn.Dropout(dropout),
            )
            for _ in range(depth)
        )
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, input_lengths: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``x [B, T]`` ids, ``m [B, T]`` True at padding -> ``[B, channels, T]`` (zeros at padding)."""
        pad = m.unsqueeze(1)
        h = self.embedding(x).transpose(1, 2).masked_fill(pad, 0.0)
        for block in self.cnn:
            h = block(h).masked_fill(pad, 0.0)
        h = run_lstm(self.lstm, h.transpose(1, 2), input_lengths, total=x.shape[1])
        return h.transpose(1, 2).masked_fill(pad, 0.0)
