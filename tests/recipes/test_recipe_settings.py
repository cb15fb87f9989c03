"""Every stage of every bundled recipe, built into the validated settings its command would run with.

`test_recipes.py` parses each stage's argv, which catches a misspelt flag. This goes one floor further:
each `adapt` stage becomes the `TrainConfig` that `adapt` would train with (flags over the model's
config.yml, then `validate`), each `pretrain` stage its `PretrainConfig`, and the stages are checked
against each other. A stage the command refuses would otherwise die hours into a recipe (after the
curvature passes), and a curvature estimated on another crop than the adaptation trains on is the
curvature of another loss: the prior penalises the trained loss's curvature only when both use the
same decoder crop (`--max-len`), and the forgetting loss is measured on that same crop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tts_adapt.cli import build_parser
from tts_adapt.cli.adapt import model_finetune_config, resolve_arguments
from tts_adapt.cli.curvature import resolve_max_len
from tts_adapt.cli.forgetting import _default_crop
from tts_adapt.cli.pretrain import pretrain_config
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.models.registry import model_paths
from tts_adapt.models.styletts2.config import BASE_CONFIG, KOKORO_CONFIG, MICRO_CONFIG, load_config
from tts_adapt.models.styletts2.default import resolve_model_paths
from tts_adapt.recipes import RECIPES_DIR, load_recipe
from tts_adapt.train.resolve import load_train_config

ASSETS = Path(BASE_CONFIG).parent

# The training keys of the official Configs/config_libritts.yml (yl4579/StyleTTS2): the config.yml a user
# of recipes/paper_p248.yaml passes is the one shipped with the LibriTTS checkpoint, which holds these.
OFFICIAL_LIBRITTS_TRAINING = {
    "batch_size": 16,
    "max_len": 300,
    "optimizer_params": {"lr": 1e-4, "bert_lr": 1e-5, "ft_lr": 1e-5},
    "slmadv_params": {
        "min_len": 400,
        "max_len": 500,
        "batch_percentage": 0.5,
        "iter": 20,
        "thresh": 5,
        "scale": 0.01,
        "sig": 1.5,
    },
}


def official_libritts_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ASSETS / "libritts_config.yml").read_text())
    config.update(OFFICIAL_LIBRITTS_TRAINING)
    config.setdefault("loss_params", {}).update(diff_epoch=10, joint_epoch=15)
    path = tmp_path / "libritts_config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def stand_in_config(recipe: str, variant: str | None, tmp_path: Path) -> Path:
    """The config.yml a stage would find on disk once the recipe's earlier stages (or the user) made it."""
    if recipe == "paper_p248":
        return official_libritts_config(tmp_path)
    if variant == "quick":
        return Path(MICRO_CONFIG)  # the quick variant's `base` stage runs init-model --config micro
    return Path(BASE_CONFIG)


def stage_settings(path: Path, tmp_path: Path):
    """``(stage tag, command, parsed args, settings)`` for every stage of every variant of one recipe."""
    recipe = load_recipe(path)
    parser = build_parser()
    for variant in [None, *recipe.variants]:
        placeholders = {k: "X" for k, v in recipe.vars.items() if v is None}
        values = recipe.resolve(tmp_path / "run", placeholders, variant)
        world = 1
        for stage in recipe.expand(values):
            launcher = recipe.launcher(stage, values)
            if "--nproc-per-node" in launcher:
                world = int(launcher[launcher.index("--nproc-per-node") + 1])
            for argv in recipe.commands(stage, values):
                args = parser.parse_args(argv)
                command = argv[0]
                if command in ("adapt", "curvature", "forgetting-loss"):
                    if getattr(args, "config", None) and not Path(args.config).exists():
                        args.config = str(stand_in_config(recipe.name, variant, tmp_path))
                    if getattr(args, "ood_texts", None) and not Path(args.ood_texts).exists():
                        args.ood_texts = str(tmp_path / "OOD_texts.txt")  # the user's copy of the list
                        Path(args.ood_texts).write_text("ðɪs ɪz ə lɑːŋ ɛnʌf aʊt ʌv dɪstɹɪbjuːʃən tɛkst.\n")
                    if getattr(args, "model", None):  # a named model: its own config and fine-tuning config
                        args.config = str(
                            KOKORO_CONFIG if args.model == "kokoro" else model_paths(args.model)[1]
                        )
                    elif command != "forgetting-loss":
                        args.checkpoint, args.config = resolve_model_paths(args.checkpoint, args.config)
                    config = load_config(args.config)
                    if command == "adapt":
                        yield variant, stage.tag, command, args, resolve_arguments(args, config, 356, world)
                    elif command == "curvature":  # the crop rule of cli/curvature.py
                        train_path = args.train_config or model_finetune_config(config)
                        train_config = load_train_config(train_path)
                        yield variant, stage.tag, command, args, resolve_max_len(args.max_len, train_config)
                    else:
                        crop = args.crop_frames
                        if crop is None:
                            crop = _default_crop(args.config)
                        yield variant, stage.tag, command, args, crop
                elif command == "pretrain":
                    yield variant, stage.tag, command, args, pretrain_config(args)


@pytest.mark.parametrize("path", sorted(RECIPES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_stage_builds_a_valid_config_that_agrees_with_the_others(path, tmp_path):
    """Every adapt/pretrain stage validates; a prior's curvature and the forgetting loss use adapt's crop."""
    settings = list(stage_settings(path, tmp_path))
    curvature_crop: dict[tuple, int] = {}
    curvature_method: dict[tuple, str] = {}
    curvature_scaling: dict[tuple, str] = {}
    for variant, _tag, command, args, value in settings:
        if command == "curvature":
            key = (variant, str(Path(args.out)))
            curvature_crop[key] = value
            curvature_method[key] = args.method
            curvature_scaling[key] = args.scaling
            if args.objective != "full":  # (full needs WavLM weights, absent here)
                get_objective(args.objective, max_len=value)  # the objective exists for this crop
    adapt_crops = set()
    for variant, tag, command, args, value in settings:
        if command == "adapt":
            cfg = value.cfg
            # a flag the recipe gives wins over config.yml (the official config holds other values)
            for flag, got in (("max_len", cfg.max_len), ("batch_size", cfg.batch_size), ("steps", cfg.steps)):
                if getattr(args, flag) is not None:
                    assert got == getattr(args, flag), (tag, flag)
            adapt_crops.add((variant, cfg.max_len))
            if cfg.curvature and cfg.curvature != "l2sp":
                key = (variant, str(Path(cfg.curvature)))
                assert key in curvature_crop, f"{tag}: --curvature {cfg.curvature} is made by no stage"
                assert curvature_crop[key] == cfg.max_len, (
                    f"{tag}: trains on {cfg.max_len}-frame crops, its curvature was estimated on "
                    f"{curvature_crop[key]}"
                )
                # a prior reads the file on the scale it was estimated on (adapt refuses a mismatch)
                assert curvature_scaling[key] == cfg.curvature_scaling, tag
                if cfg.curvature_scaling == "reference":
                    # the reference implementation defines its scale for kfac, diag and l2sp only
                    assert curvature_method[key] in ("kfac", "diag"), tag
    for variant, tag, command, _args, value in settings:
        if command == "forgetting-loss":
            assert {crop for v, crop in adapt_crops if v == variant} == {value}, (
                f"{tag}: the forgetting loss is measured on {value}-frame crops"
            )
    if path.stem in ("smoke", "forgetting", "paper_p248", "forgetting_kokoro"):
        assert any(c == "adapt" for _, _, c, _, _ in settings), "the recipe adapts"
    if path.stem == "base_model":
        assert any(c == "pretrain" for _, _, c, _, _ in settings)
    if path.stem == "paper_p248":
        for _variant, tag, command, _args, value in settings:
            if command == "adapt":
                assert_reference_p248(value, tag)


def assert_reference_p248(resolved, tag: str) -> None:
    """The reference experiment's fine-tuning values (tts/Configs/config_ft_p248.yml of
    idiap/bayesian-peft: 50 epochs of 356 utterances in batches of 2, crop 200, diffusion from epoch 10,
    SLM stage from epoch 30, lr 1e-4, bert_lr 1e-5, ft_lr 1e-4, slmadv iter 10), not those of the
    LibriTTS checkpoint's config.yml (batch 16, ft_lr 1e-5, joint_epoch 15, iter 20)."""
    cfg = resolved.cfg
    spe = 356 // 2
    assert (cfg.batch_size, cfg.max_len, cfg.steps) == (2, 200, 50 * spe), tag
    assert (cfg.diff_start, cfg.joint_start) == (10 * spe, 30 * spe), tag
    assert (cfg.lr, cfg.bert_lr, cfg.ft_lr) == (1e-4, 1e-5, 1e-4), tag
    assert cfg.slmadv_params["iter"] == 10 and cfg.slmadv_params["batch_percentage"] == 0.5, tag
    assert cfg.batching == "random" and cfg.ood_texts, tag
