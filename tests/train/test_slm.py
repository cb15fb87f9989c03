"""The speech-LM terms: differentiable durations, the WavLM wrapper, and the joint stage in the trainer.

No WavLM weights can be downloaded here, so the trainer test runs the real code path with a small,
randomly initialised ``transformers`` WavLM of the same architecture.
"""

from __future__ import annotations

import logging

import pytest
import torch

from tts_adapt.train.slm import SpeechLM
from tts_adapt.train.slm_adversarial import soft_alignment
from tts_adapt.train.trainer import Trainer

from .conftest import quick_config


def test_soft_alignment_is_a_differentiable_alignment():
    torch.manual_seed(0)
    logits = torch.randn(5, 50, requires_grad=True)
    attn, frames = soft_alignment(logits, sigma=1.5)
    assert frames == int(torch.round(torch.sigmoid(logits).sum()))
    assert attn.shape == (5, frames)
    torch.testing.assert_close(attn.sum(0), torch.ones(frames))
    attn[0].sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_missing_wavlm_is_clear(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="not available locally"):
        SpeechLM.load(tmp_path / "no-wavlm")
    with caplog.at_level(logging.INFO):
        assert SpeechLM.try_load({"model": str(tmp_path / "no-wavlm")}) is None
    assert "SLM losses off" in caplog.text


def tiny_wavlm(layers: int = 2, hidden: int = 32) -> torch.nn.Module:
    from transformers import WavLMConfig, WavLMModel

    torch.manual_seed(0)
    cfg = WavLMConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    return WavLMModel(cfg)


def test_joint_stage_trains_with_a_speech_lm(fresh_model, target_items, tmp_path):
    model = fresh_model()
    slm = SpeechLM(tiny_wavlm())  # 2 layers + embeddings = 3 hidden states of 32: the micro wd's input
    cfg = quick_config(
        method="lora",
        steps=1,
        joint_start=0,
        slm_min_len=80,
        slm_max_len=100,
        slmadv_params={"iter": 1, "batch_percentage": 1.0},
    )
    wd_before = [p.detach().clone() for p in model.wd.parameters()]
    trainer = Trainer(model, cfg, target_items, tmp_path, slm=slm, progress=False)
    summary = trainer.run(resume=False)
    losses = summary["final_losses"]
    assert {"slm", "slm_gen", "slm_disc"} <= set(losses), losses
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(wd_before, model.wd.parameters()))
