"""Flags override the fine-tuning config only when given; the SLM terms are never dropped silently.

Official semantics (yl4579/StyleTTS2 ``train_finetune.py`` at 5cedc71): ``batch_size``, ``max_len``, the
three learning rates and the stage starts ``loss_params.diff_epoch`` / ``joint_epoch`` (compared with the
epoch counter) come from the fine-tuning config ``Configs/config_ft.yml``; the loader drops the last
partial batch, so an epoch is ``utterances // batch_size`` steps.
"""

from __future__ import annotations

import pytest

from tts_adapt.train import ConfigError, TrainConfig
from tts_adapt.train.resolve import (
    FINETUNE_CONFIG,
    check_ood,
    check_slm,
    describe_settings,
    load_train_config,
    resolve_settings,
)

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
    assert r.sources["batch_size"] == "fine-tuning config: batch_size"
    assert r.sources["diff_start"] == "fine-tuning config: loss_params.diff_epoch x 5 steps/epoch"
    assert r.sources["method"] == "flag"
    text = describe_settings(r)
    assert "(fine-tuning config: max_len)" in text and "(utterances // batch)" in text


def test_flags_win_when_given():
    flags = {**NOT_GIVEN, "batch_size": 2, "max_len": 200, "lr": 1e-4, "steps": 7, "joint_start": 6}
    r = resolve_settings(OFFICIAL, flags, n_utterances=22)
    cfg = r.cfg
    assert (cfg.batch_size, cfg.max_len, cfg.lr, cfg.steps, cfg.joint_start) == (2, 200, 1e-4, 7, 6)
    # the epoch length follows the batch size that is used
    assert r.steps_per_epoch == 11 and cfg.diff_start == 2 * 11
    assert cfg.bert_lr == 2e-5 and r.sources["bert_lr"] == "fine-tuning config: optimizer_params.bert_lr"
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


# The training keys of the official Configs/config_ft.yml (yl4579/StyleTTS2 at 5cedc71), read from that file.
OFFICIAL_CONFIG_FT = {
    "epochs": 50,
    "batch_size": 8,
    "max_len": 400,
    "loss_params": {"diff_epoch": 10, "joint_epoch": 30},
    "optimizer_params": {"lr": 1e-4, "bert_lr": 1e-5, "ft_lr": 1e-4},
    "slmadv_params": {
        "min_len": 400,
        "max_len": 500,
        "batch_percentage": 0.5,
        "iter": 10,
        "thresh": 5,
        "scale": 0.01,
        "sig": 1.5,
    },
    "data_params": {"min_length": 50},
    "model_params": {"diffusion": {"dist": {"estimate_sigma_data": True}}},
}
# ... and of Configs/config_libritts.yml, the pre-training config shipped with the LibriTTS checkpoint.
OFFICIAL_LIBRITTS_TRAINING = {
    "batch_size": 16,
    "max_len": 300,
    "optimizer_params": {"lr": 1e-4, "bert_lr": 1e-5, "ft_lr": 1e-5},
    "loss_params": {"diff_epoch": 10, "joint_epoch": 15, "lambda_mel": 5.0},
    "slmadv_params": {"min_len": 400, "max_len": 500, "batch_percentage": 0.5, "iter": 20},
}


def test_shipped_finetune_config_is_the_official_config_ft():
    shipped = load_train_config(None)
    assert load_train_config(FINETUNE_CONFIG) == shipped
    assert shipped == OFFICIAL_CONFIG_FT


def test_checkpoint_training_keys_never_become_settings():
    """Official fine-tuning of the LibriTTS checkpoint trains with config_ft.yml's values; the
    checkpoint's config.yml holds the pre-training ones (ft_lr 10x lower, batch 16, joint_epoch 15)."""
    r = resolve_settings(
        load_train_config(None),
        dict(NOT_GIVEN),
        n_utterances=356,
        checkpoint_config=OFFICIAL_LIBRITTS_TRAINING,
    )
    cfg = r.cfg
    assert (cfg.batch_size, cfg.max_len, cfg.ft_lr, cfg.bert_lr, cfg.lr) == (8, 400, 1e-4, 1e-5, 1e-4)
    assert r.steps_per_epoch == 356 // 8
    assert (cfg.steps, cfg.diff_start, cfg.joint_start) == (50 * 44, 10 * 44, 30 * 44)
    assert cfg.slmadv_params["iter"] == 10 and cfg.estimate_sigma_data is True
    assert r.sources["ft_lr"] == "fine-tuning config: optimizer_params.ft_lr"
    assert set(r.unused) == {
        "batch_size 16",
        "max_len 300",
        "optimizer_params.ft_lr 1e-05",
        "loss_params.joint_epoch 15",
        "slmadv_params.iter 20",
    }
    text = describe_settings(r)
    assert "not used, from the checkpoint's config.yml" in text and "optimizer_params.ft_lr 1e-05" in text


def test_joint_start_never_overrides_the_config():
    r = resolve_settings(OFFICIAL, {**NOT_GIVEN, "joint_start": "never"}, n_utterances=22)
    assert r.cfg.joint_start is None and r.sources["joint_start"] == "flag"
    assert "joint_start         never" in describe_settings(r)


def test_missing_ood_texts_refuse_the_slm_stage_unless_no_ood():
    joint = TrainConfig(method="lora", steps=10, joint_start=5)
    with pytest.raises(ConfigError, match="--no-ood"):
        check_ood(joint, slm_found="wavlm")
    with pytest.raises(ConfigError, match="Data/OOD_texts.txt does not exist"):
        check_ood(joint, "wavlm", missing="data_params.OOD_data Data/OOD_texts.txt")
    check_ood(TrainConfig(method="lora", steps=10, joint_start=5, no_ood=True), "wavlm")
    check_ood(TrainConfig(method="lora", steps=10, joint_start=5, ood_texts="x.txt"), "wavlm")
    check_ood(TrainConfig(method="lora", steps=10, joint_start=5, no_slm=True), None)
    check_ood(TrainConfig(method="lora", steps=10, joint_start=10), "wavlm")  # no stage in the run


def test_fewer_utterances_than_a_batch_are_refused_before_loading_a_model():
    with pytest.raises(ConfigError, match="fewer than one batch of 8"):
        resolve_settings(load_train_config(None), dict(NOT_GIVEN), n_utterances=5)
    ok = resolve_settings(load_train_config(None), {**NOT_GIVEN, "batching": "length"}, n_utterances=5)
    assert ok.cfg.batching == "length"  # length groups keep the last partial batch


def _adapt(*extra: str):
    """``adapt`` flags as the command line parses them, resolved against the micro model's config."""
    from tts_adapt.cli import build_parser
    from tts_adapt.cli.adapt import resolve_arguments
    from tts_adapt.models.styletts2.config import MICRO_CONFIG, load_config

    args = build_parser().parse_args(["adapt", "--data", "x.txt", "--out", "o", "--no-slm", *extra])
    return resolve_arguments(args, load_config(MICRO_CONFIG), 40, world=1)


def test_the_default_method_runs_without_a_curvature_and_a_given_curvature_means_its_prior():
    plain = _adapt()
    assert plain.cfg.method == "lora" and not plain.cfg.uses_prior
    assert plain.sources["method"] == "default without --curvature"
    prior = _adapt("--curvature", "l2sp")
    assert prior.cfg.method == "lora+prior" and prior.cfg.curvature == "l2sp"
    assert prior.sources["method"] == "default with --curvature"
    assert _adapt("--method", "full").cfg.method == "full"
    with pytest.raises(ConfigError, match="needs a curvature file"):
        _adapt("--method", "lora+prior")


def test_lora_alpha_and_its_deprecated_name(caplog):
    assert _adapt().cfg.lora_alpha == 32.0 and _adapt("--lora-alpha", "8").cfg.lora_alpha == 8.0
    with caplog.at_level("WARNING"):
        assert _adapt("--alpha", "4").cfg.lora_alpha == 4.0
    assert "--alpha is deprecated" in caplog.text and "--lora-alpha" in caplog.text


def test_the_settings_name_a_prior_only_for_a_method_that_has_one():
    def lines(resolved) -> list[str]:
        return [line.split()[0] for line in describe_settings(resolved).splitlines()[1:]]

    assert not {"strength", "curvature", "curvature_scaling"} & set(lines(_adapt()))
    assert {"strength", "curvature", "curvature_scaling"} <= set(lines(_adapt("--curvature", "l2sp")))


def test_the_parameter_table_shows_what_trains():
    """A component set trainable that no step changes reads 0, with the reason, beside its total."""
    from tts_adapt.train.methods import describe_counts

    counts = {
        "per_module": {"decoder": {"trainable": 10, "total": 100}, "mpd": {"trainable": 50, "total": 50}},
        "adapted_trainable": 10,
        "lora": 10,
    }
    table = describe_counts(counts, {"mpd": "lambda_gen 0"}).splitlines()
    assert table[1].split()[:4] == ["decoder", "10", "100", "10.000"]
    assert table[2].split()[:4] == ["mpd", "0", "50", "0.000"] and "(not trained: lambda_gen 0)" in table[2]
    assert describe_counts(counts).splitlines()[2].split()[:2] == ["mpd", "50"]
