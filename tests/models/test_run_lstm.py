"""``run_lstm`` against the official packed-sequence LSTM, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tts_adapt.adapters import apply_lora
from tts_adapt.models.styletts2.layers import run_lstm


def packed(lstm: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The official way (StyleTTS 2 ``models.py``, ``TextEncoder``/``DurationEncoder``): pack, run,
    unpack, zero past each length, pad back to the batch's width."""
    p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(p)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class Holder(nn.Module):
    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("lora", [False, True])
def test_padded_runs_equal_the_packed_run(bidirectional, lora):
    """Sequences of mixed lengths (one at full width, one of length 1): outputs, the input gradient and
    every weight gradient (the LoRA factors' for a LoRA-wrapped LSTM) equal the packed run's in float64."""
    torch.manual_seed(0)
    holder = Holder(nn.LSTM(5, 4, 1, batch_first=True, bidirectional=bidirectional)).double()
    if lora:
        apply_lora(holder, targets=["lstm"], rank=2, alpha=4, layer_types=("lstm",))
        for name, p in holder.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.3)  # B = 0 would hide the adapter path
    lstm = holder.lstm
    x = torch.randn(4, 9, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([9, 4, 1, 7])
    got = run_lstm(lstm, x, lengths)
    want = packed(lstm, x, lengths)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    assert got[1, 4:].abs().max() == 0 and got[2, 1:].abs().max() == 0  # padding comes out as zeros
    params = [x] + [p for p in holder.parameters() if p.requires_grad]
    g = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(got, params, g), torch.autograd.grad(want, params, g), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_full_lengths_and_total_width():
    """All sequences at full length run unpacked; ``total`` pads the output with zero steps."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 2, 1, batch_first=True, bidirectional=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out = run_lstm(lstm, x, torch.tensor([6, 6]), total=8)
    torch.testing.assert_close(out[:, :6], lstm(x)[0], atol=1e-12, rtol=0)
    assert out.shape == (2, 8, 4) and out[:, 6:].abs().max() == 0


def test_two_layer_lstm_falls_back_to_packing():
    """A two-layer bidirectional LSTM cannot be split by direction; it still equals the packed run."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 2, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 3])
    torch.testing.assert_close(run_lstm(lstm, x, lengths), packed(lstm, x, lengths), atol=1e-12, rtol=0)
