"""Small modules that mimic StyleTTS 2's layer types (shared by the adapter, curvature and prior tests)."""

from __future__ import annotations

import torch
from torch import nn

from tts_adapt.models.styletts2.norm import spectral_norm, weight_norm


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x))


class Toy(nn.Module):
    """Linear -> dilated weight-normed Conv1d -> aliased block (also as ``unet``) -> BiLSTM -> Linear head."""

    def __init__(self, d_in: int = 5, d: int = 6, d_out: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.conv = weight_norm(nn.Conv1d(d, d, 3, padding=2, dilation=2))
        self.block = Block(d)
        self.unet = self.block  # one module under two names, like StyleTTS 2's diffusion transformer
        self.lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(d, d_out, bias=False)
        self.sn = spectral_norm(nn.Linear(d, d))  # spectral-normalised, never on the forward path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.conv(h.transpose(1, 2))).transpose(1, 2)
        h = self.block(h) + self.unet(h)
        h, _ = self.lstm(h)
        return self.head(h)


def make_toy(seed: int = 0, dtype: torch.dtype = torch.float32, **kw) -> Toy:
    torch.manual_seed(seed)
    return Toy(**kw).to(dtype).eval()


def randomize_lora(model: nn.Module, seed: int = 1, std: float = 0.3) -> None:
    """Give every LoRA B factor non-zero values (B = 0 at init makes ΔW = 0)."""
    from tts_adapt.adapters import lora_layers

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            for p in layer.lora_B.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
