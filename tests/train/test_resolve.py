"""Flags override the official config only when given; the SLM terms are never dropped silently.

Official semantics (yl4579/StyleTTS2 ``train_finetune.py``): ``batch_size``, ``max_len``, the three
learning rates and the stage starts ``loss_params.diff_epoch`` / ``joint_epoch`` (compared with the
epoch counter) come from ``config.yml``; the loader drops the last partial batch, so an epoch is
``utterances // batch_size`` steps.
"""

from __future__ import annotations

import pytest

from tts_adapt.train import ConfigError, TrainConfig
from tts_adapt.train.resolve import check_slm, describe_settings, resolve_settings

OFFICIAL = {
    "epochs": 5,
    "batch_size": 4,
    "max_len": 300,
    "optimizer_params": {"lr": 2e-4, "bert_lr": 2e-5, "ft_lr": 3e-4},
    "loss_params": {"diff_epoch": 2, "joint_epoch": 3},
    "slmadv_params": {"min_len": 400, "max_len": 500, "batch_percentage": 0.5},
    "data_params": {"min_length": 40},
}
NOT_GIVEN = dict.fromkeys(
    ("steps", "batch_size", "max_len", "lr", "bert_lr", "ft_lr", "diff_start", "joint_start")
)


def test_config_values_when_no_flag_is_given():
    r = resolve_settings(OFFICIAL, {**NOT_GIVEN, "method": "lora"}, n_utterances=22)
    cfg = r.cfg
    assert r.steps_per_epoch == 22 // 4
    assert (cfg.batch_size, cfg.max_len) == (4, 300)
    assert (cfg.lr, cfg.bert_lr, cfg.ft_lr) == (2e-4, 2e-5, 3e-4)
    assert (cfg.steps, cfg.diff_start, cfg.joint_start) == (5 * 5, 2 * 5, 3 * 5)
    assert (cfg.slm_min_len, cfg.ood_min_length) == (400, 40)
    assert r.sources["batch_size"] == "config: batch_size"
    assert r.sources["diff_start"] == "config: loss_params.diff_epoch x 5 steps/epoch"
    assert r.sources["method"] == "flag"
    text = describe_settings(r)
    assert "max_len" in text and "(config: max_len)" in text and "(utterances // batch)" in text


def test_flags_win_when_given():
    flags = {**NOT_GIVEN, "batch_size": 2, "max_len": 200, "lr": 1e-4, "steps": 7, "joint_start": 6}
    r = resolve_settings(OFFICIAL, flags, n_utterances=22)
    cfg = r.cfg
    assert (cfg.batch_size, cfg.max_len, cfg.lr, cfg.steps, cfg.joint_start) == (2, 200, 1e-4, 7, 6)
    # the epoch length follows the batch size that is used
    assert r.steps_per_epoch == 11 and cfg.diff_start == 2 * 11
    assert cfg.bert_lr == 2e-5 and r.sources["bert_lr"] == "config: optimizer_params.bert_lr"
    assert r.sources["max_len"] == "flag"


def test_defaults_without_config_keys():
    r = resolve_settings({}, dict(NOT_GIVEN), n_utterances=10)
    d = TrainConfig()
    assert (r.cfg.steps, r.cfg.batch_size, r.cfg.max_len, r.cfg.lr) == (
        d.steps,
        d.batch_size,
        d.max_len,
        d.lr,
    )
    assert r.cfg.joint_start is None and all(r.sources[k] == "default" for k in NOT_GIVEN)


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_settings({}, {"learning_rate": 1.0}, 10)


def test_missing_wavlm_refuses_unless_no_slm():
    cfg = TrainConfig(method="lora")
    with pytest.raises(ConfigError, match="--no-slm"):
        check_slm(cfg, lambda_slm=1.0, slm_found=None)
    joint = TrainConfig(method="lora", steps=10, joint_start=5)
    with pytest.raises(ConfigError, match="SLM-adversarial stage from step 5"):
        check_slm(joint, lambda_slm=0.0, slm_found=None)
    assert "off (--no-slm)" in check_slm(TrainConfig(method="lora", no_slm=True), 1.0, None)
    assert "not used" in check_slm(cfg, 0.0, None)
    assert "WavLM x" in check_slm(cfg, 1.0, "x")
