"""Config validation catches the official fine-tuning traps before any model is loaded."""

from __future__ import annotations

import logging

import pytest

from tts_adapt.train import ConfigError, TrainConfig, from_official, validate


def test_slm_clip_length_may_exceed_the_decoder_crop():
    """Officially (Modules/slmadv.py) SLM clips are cut from the whole utterance (``mel_input_length``),
    not from the ``max_len`` decoder crop, so min_len 400 with max_len 200 is a valid setting."""
    cfg = TrainConfig(method="lora", steps=100, joint_start=10, max_len=200, slm_min_len=400, batch_size=8)
    assert not any("slm" in w.lower() for w in validate(cfg, warn=False))


def test_slm_share_too_small_warns():
    """Officially the step keeps clips until ``len(kept) >= batch_percentage * len(batch)`` and returns
    nothing with one clip or fewer: with 0.5 x 2 it always stops at one clip and never runs."""
    never = TrainConfig(
        method="lora", steps=100, joint_start=10, batch_size=2, slmadv_params={"batch_percentage": 0.5}
    )
    (w,) = [w for w in validate(never, warn=False) if "batch_percentage" in w]
    assert "never runs" in w
    ok = TrainConfig(
        method="lora", steps=100, joint_start=10, batch_size=4, slmadv_params={"batch_percentage": 0.5}
    )
    assert not any("batch_percentage" in w for w in validate(ok, warn=False))
    # the same global batch over two processes: each keeps at most one clip
    assert any("never runs" in w for w in validate(ok, warn=False, world=2))
    # no joint stage in the run: nothing to warn about
    off = TrainConfig(method="lora", steps=100, joint_start=None, batch_size=2)
    assert not any("batch_percentage" in w for w in validate(off, warn=False))


def test_diffusion_after_joint_stage_crashes_officially():
    cfg = TrainConfig(method="lora", steps=100, diff_start=50, joint_start=20, max_len=400, slm_min_len=400)
    with pytest.raises(ConfigError, match="diff_epoch <= joint_epoch"):
        validate(cfg)


def test_crop_too_short_and_short_crop_warning(caplog):
    with pytest.raises(ConfigError, match="every batch would be skipped"):
        validate(TrainConfig(method="lora", max_len=60))
    with caplog.at_level(logging.WARNING):
        warnings = validate(TrainConfig(method="lora", max_len=120))
    assert any("short" in w for w in warnings) and "max_len 120" in caplog.text


def test_tiny_batches_warn():
    assert any("NaN" in w for w in validate(TrainConfig(method="lora", batch_size=1), warn=False))
    assert not validate(TrainConfig(method="lora", batch_size=2), warn=False)


def test_prior_needs_curvature_and_vice_versa():
    with pytest.raises(ConfigError, match="needs a curvature"):
        validate(TrainConfig(method="lora+prior"))
    with pytest.raises(ConfigError, match="has no prior"):
        validate(TrainConfig(method="lora", curvature="l2sp"))
    with pytest.raises(ConfigError, match="finite"):
        validate(TrainConfig(method="lora+prior", curvature="l2sp", strength=-1.0))
    with pytest.raises(ConfigError, match="method must be"):
        validate(TrainConfig(method="qlora"))


def test_official_config_maps_epochs_to_steps():
    official = {
        "epochs": 50,
        "batch_size": 2,
        "max_len": 400,
        "optimizer_params": {"lr": 1e-4, "bert_lr": 1e-5, "ft_lr": 1e-4},
        "loss_params": {"diff_epoch": 10, "joint_epoch": 30},
        "slmadv_params": {"min_len": 400, "max_len": 500},
        "model_params": {"diffusion": {"dist": {"estimate_sigma_data": True}}},
    }
    cfg = from_official(official, steps_per_epoch=178, method="lora")
    assert (cfg.steps, cfg.diff_start, cfg.joint_start) == (50 * 178, 10 * 178, 30 * 178)
    assert (cfg.batch_size, cfg.max_len, cfg.slm_min_len) == (2, 400, 400)
    validate(cfg)
