"""Forgetting commands: ``forgetting-loss`` (held-out pre-training loss and the prior's prediction of
its rise) and ``forgetting-summary`` (every run of the experiment in one table, figures, goal check)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..models.registry import add_model_arguments

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forgetting-loss",
        help="held-out pre-training loss of the base or an adapted model, and each prior's prediction",
        description="Scores the pre-training objective on held-out pre-training utterances with per-batch "
        "seeds (same crops and noise for every model), and for an adapted model the Laplace prediction "
        "½·vec(ΔW)ᵀ H vec(ΔW) of the loss increase for each curvature. Writes one JSON file.",
    )
    add_model_arguments(p)
    p.add_argument("--data", required=True, help="held-out pre-training utterances (corpus or file list)")
    p.add_argument("--subsets", help="LibriTTS-style subsets to read, comma-separated")
    p.add_argument("--speakers", help="only these speakers, comma-separated")
    p.add_argument("--max-utterances", type=int, default=50, help="seeded subset size (0 = all)")
    p.add_argument("--objective", default="styletts2", help="the curvature's objective (default: styletts2)")
    p.add_argument(
        "--crop-frames",
        type=int,
        default=None,
        help="decoder crop: give the curvature's --max-len (default: the same rule as curvature, config.yml "
        "max_len else 200)",
    )
    p.add_argument("--seed", type=int, default=0, help="subset and per-batch randomness seed")
    p.add_argument("--adapted", help="an adapted-model folder (tts-adapt adapt); without it: the base model")
    p.add_argument("--name", help="run name (default: the adapted folder's name)")
    p.add_argument("--base-loss", help="the base model's loss file from an earlier call (reused, checked)")
    p.add_argument(
        "--curvature",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a curvature to predict with (repeatable); PATH 'l2sp' is the identity",
    )
    p.add_argument("--device", default="cpu", help="torch device for the loss passes")
    p.add_argument("--out", required=True, type=Path, help="output JSON file")
    p.set_defaults(func=cmd_loss)

    p = sub.add_parser(
        "forgetting-summary",
        help="gather the forgetting experiment's runs into one table, figures and the goal check",
    )
    p.add_argument("--eval", required=True, type=Path, help="the evaluation folder holding every run")
    p.add_argument("--losses", required=True, type=Path, help="folder of forgetting-loss JSON files")
    p.add_argument("--out", required=True, type=Path, help="output folder (summary.json/.csv/.md, PNGs)")
    p.add_argument("--main-size", type=int, help="curvature size for the goal and Pareto plot (default: max)")
    p.add_argument("--stages", type=Path, help="a recipe run's stages/ folder: measured times per stage")
    p.add_argument("--results", type=Path, help="also write the results page here (e.g. docs/results.md)")
    p.add_argument("--command", default="", help="the exact command that produced the run (results page)")
    p.add_argument("--note", default="", help="a line for the top of the results page")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "forgetting-summary-kokoro",
        help="the voice-pack (Kokoro) forgetting experiment's page: targets, stock voices, goal check",
        description="Reads a run folder of recipes/forgetting_kokoro.yaml (RUN/<target>/eval, loss, adapt; "
        "RUN/curvature; RUN/stages) and writes RUN/summary/summary.json, summary.csv and the results page "
        "with its figures and Listen clips. Each run's curvature predictions are computed here (and "
        "cached) with the curvature files of --main-size that exist.",
    )
    add_model_arguments(p)
    p.add_argument("--run", required=True, type=Path, help="the recipe's run folder (--out)")
    p.add_argument("--targets", required=True, help="target names, comma-separated (folders under RUN)")
    p.add_argument("--main-size", type=int, required=True, help="curvature size of the λ sweep")
    p.add_argument(
        "--listen-voices", default="af_heart,bf_emma,am_adam", help="stock voices of the Listen table"
    )
    p.add_argument("--results", type=Path, help="the results page (default: RUN/summary/results.md)")
    p.add_argument("--command", default="", help="the exact command that produced the run")
    p.set_defaults(func=cmd_summary_kokoro)


def _default_crop(config_path: str) -> int:
    """The crop ``tts-adapt curvature`` and ``adapt`` use when not told (the shipped fine-tuning config's
    ``max_len``): the loss measured is the loss they modelled and trained."""
    from ..models.styletts2.config import load_config
    from ..train.resolve import load_train_config
    from .adapt import model_finetune_config
    from .curvature import resolve_max_len

    if not Path(config_path).exists():
        raise FileNotFoundError(f"not found: {config_path}")
    return resolve_max_len(None, load_train_config(model_finetune_config(load_config(config_path))))


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"{flag} expects LABEL=PATH, got {item!r}")
        if label in out:
            raise ValueError(f"{flag}: label {label!r} given twice")
        out[label] = path
    return out


def cmd_loss(args: argparse.Namespace) -> int:
    import torch

    from ..forgetting.loss import (
        HeldoutSpec,
        build_predictors,
        heldout_batches,
        heldout_losses,
        load_weights_into,
        predictions,
        summarise,
    )
    from ..forgetting.runs import curvature_info, run_info
    from ..models.registry import resolve_model
    from ..models.styletts2 import load_official
    from ..models.styletts2.config import text_settings
    from ..utils.io import write_json

    args.checkpoint, args.config = resolve_model(args.model, args.checkpoint, args.config)
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None  # noqa: E731
    spec = HeldoutSpec(
        data=args.data,
        subsets=split(args.subsets),
        speakers=split(args.speakers),
        max_utterances=args.max_utterances or None,
        seed=args.seed,
        objective=args.objective,
        crop_frames=args.crop_frames if args.crop_frames is not None else _default_crop(args.config),
    )
    curvatures = _pairs(args.curvature, "--curvature")
    for path in (args.checkpoint, args.config):
        if not Path(path).exists():
            raise FileNotFoundError(f"not found: {path}")
    model = load_official(args.checkpoint, args.config).to(torch.device(args.device)).eval()
    priors = build_predictors(model, curvatures)
    batches = heldout_batches(spec, progress=not args.quiet, text=text_settings(model.config))
    progress = not args.quiet and sys.stderr.isatty()
    if args.base_loss:
        base = json.loads(Path(args.base_loss).read_text(encoding="utf-8"))
        if base.get("spec") != spec.key():
            raise ValueError(
                f"{args.base_loss} was computed on other utterances or with another objective: "
                f"{base.get('spec')} vs {spec.key()}"
            )
        base_loss = base["base_loss"]
    else:
        base_loss = summarise(heldout_losses(model, batches, spec, progress))
    result = {
        "spec": spec.key(),
        "base_loss": base_loss,
        "curvatures": {k: curvature_info(v) for k, v in curvatures.items()},
    }
    for label, info in result["curvatures"].items():
        if info.get("objective") not in (None, spec.objective):
            log.warning(
                "curvature %s used objective %s, the loss uses %s", label, info["objective"], spec.objective
            )
    if args.adapted:
        load_weights_into(model, args.adapted, args.checkpoint)
        loss = summarise(heldout_losses(model, batches, spec, progress))
        result.update(
            run=args.name or Path(args.adapted).name,
            adapted=str(args.adapted),
            info=run_info(args.adapted),
            loss=loss,
            increase=loss["mean"] - base_loss["mean"],
            predicted=predictions(priors),
        )
        print(
            f"{result['run']}: held-out loss {base_loss['mean']:.4f} -> {loss['mean']:.4f} "
            f"(+{result['increase']:.4f}); predicted "
            + ", ".join(f"{k}={v:.4g}" for k, v in result["predicted"].items())
        )
    else:
        result["run"] = "base"
        print(f"base: held-out loss {base_loss['mean']:.4f} on {base_loss['n']} utterances")
    write_json(args.out, result)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ..forgetting.results import summarise_experiment

    paths = summarise_experiment(
        args.eval,
        args.losses,
        args.out,
        main_size=args.main_size,
        stages=args.stages,
        results_page=args.results,
        command=args.command,
        note=args.note,
    )
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_summary_kokoro(args: argparse.Namespace) -> int:
    from ..forgetting.stock_results import summarise_stock_experiment
    from ..models.registry import resolve_model

    if not args.run.is_dir():
        raise FileNotFoundError(f"--run {args.run}: no such folder")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    voices = [v.strip() for v in args.listen_voices.split(",") if v.strip()]
    paths = summarise_stock_experiment(
        args.run,
        targets,
        main_size=args.main_size,
        listen_voices=voices,
        results_page=args.results,
        command=args.command,
        model=lambda: resolve_model(args.model, args.checkpoint, args.config),  # only if a run needs it
    )
    for p in paths:
        print(f"wrote {p}")
    return 0
