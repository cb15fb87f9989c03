"""Config validation catches the official fine-tuning traps before any model is loaded."""

from __future__ import annotations

import logging

import pytest

from tts_adapt.train import ConfigError, TrainConfig, from_official, validate


def test_slm_stage_that_never_runs():
    cfg = TrainConfig(method="lora", steps=100, joint_start=10, max_len=200, slm_min_len=400)
    with pytest.raises(ConfigError, match="silently never run"):
        validate(cfg)
    validate(TrainConfig(method="lora", steps=100, joint_start=10, max_len=400, slm_min_len=400))
    # a joint stage scheduled after the end cannot run either, but is simply off
    validate(TrainConfig(method="lora", steps=100, joint_start=500, max_len=200, slm_min_len=400))


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
