"""``tts-adapt adapt``: fine-tune the pre-trained StyleTTS 2 on a target speaker (LoRA + Laplace prior)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .data import add_data_arguments, add_text_argument, load_data_arguments

log = logging.getLogger(__name__)


def parse_strength(text: str) -> float | dict[str, float]:
    """``1e3`` or per-component ``decoder=1e4,default=1e3``."""
    if "=" not in text:
        return float(text)
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        out[name.strip()] = float(value)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    from ..train.config import METHODS, TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "adapt",
        help="adapt the pre-trained model to a target speaker",
        description="Fine-tune StyleTTS 2 on a target speaker with full, linear, LoRA or LoRA + "
        "Laplace-prior training. Re-running with the same --out resumes; torchrun runs it data-parallel.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="official pre-trained checkpoint (epochs_2nd_00020.pth)"
    )
    p.add_argument("--config", required=True, help="its config.yml")
    add_data_arguments(p)
    add_text_argument(p)
    p.add_argument(
        "--out", required=True, help="output folder (adapter, config, manifest, logs, checkpoints)"
    )
    p.add_argument("--method", default=d.method, choices=METHODS)
    p.add_argument("--curvature", help="curvature file from 'tts-adapt curvature', or 'l2sp' (identity)")
    p.add_argument(
        "--lambda", dest="strength", default="1e3", help="prior strength, or e.g. decoder=1e4,default=1e3"
    )
    p.add_argument(
        "--prior-missing-layers",
        default=d.prior_missing,
        choices=("error", "skip"),
        help="LoRA layers the curvature file does not cover: stop with an error, or train them without "
        "a prior",
    )
    p.add_argument(
        "--curvature-any-weights",
        action="store_true",
        help="accept a curvature file estimated on other weights of the same architecture",
    )
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--frame-budget", type=int, help="max padded mel frames per batch (length bucketing)")
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--max-len", type=int, default=d.max_len, help="decoder crop in mel frames (12.5 ms)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--bert-lr", type=float, default=d.bert_lr)
    p.add_argument("--ft-lr", type=float, default=d.ft_lr)
    p.add_argument(
        "--diff-start", type=int, default=d.diff_start, help="step at which style diffusion trains"
    )
    p.add_argument(
        "--joint-start", type=int, help="step at which the SLM-adversarial stage starts (needs WavLM weights)"
    )
    p.add_argument("--rank", type=int, default=d.lora_rank, help="LoRA rank")
    p.add_argument("--alpha", type=float, default=d.lora_alpha, help="LoRA alpha")
    p.add_argument("--lora-dropout", type=float, default=d.lora_dropout)
    p.add_argument("--lora-layers", default="linear", help="layer kinds for LoRA: linear,conv1d,lstm")
    p.add_argument("--lora-targets", help="comma-separated modules/layers/globs (default: the paper's)")
    p.add_argument("--f0", default=d.f0, choices=("jdc", "pyin"), help="F0 targets: JDC network or pYIN DSP")
    p.add_argument(
        "--no-dropout", action="store_true", help="train every module in eval mode (deterministic)"
    )
    p.add_argument("--amp", default=d.amp, choices=("none", "bf16", "fp16"))
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="auto", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--sample-every", type=int, default=d.sample_every)
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints)
    p.add_argument("--jobs", type=int, default=1, help="parallel data preparation workers")
    p.add_argument("--wavlm", help="WavLM weights (folder or hub id in the local cache) for the SLM losses")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import PrepareConfig, SkipReport, prepare_corpus
    from ..models.styletts2.config import load_config
    from ..train import TrainConfig, from_official, run_adaptation, validate

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    if (out / "manifest.json").exists():
        print(f"{out} already holds a finished adaptation (manifest.json); use another --out to train again")
        return 0
    config = load_config(args.config)
    cfg = from_official(
        config,
        method=args.method,
        steps=args.steps,
        batch_size=args.batch_size,
        frame_budget=args.frame_budget,
        grad_accum=args.grad_accum,
        max_len=args.max_len,
        lr=args.lr,
        bert_lr=args.bert_lr,
        ft_lr=args.ft_lr,
        diff_start=args.diff_start,
        joint_start=args.joint_start,
        lora_rank=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.lora_dropout,
        lora_layer_types=tuple(s.strip() for s in args.lora_layers.split(",") if s.strip()),
        lora_targets=[s.strip() for s in args.lora_targets.split(",")] if args.lora_targets else None,
        curvature=args.curvature,
        strength=parse_strength(args.strength),
        prior_missing=args.prior_missing_layers,
        curvature_any_weights=args.curvature_any_weights,
        seed=args.seed,
        f0=args.f0,
        dropout=not args.no_dropout,
        amp=args.amp,
        device=args.device,
        log_every=args.log_every,
        save_every=args.save_every,
        sample_every=args.sample_every,
        keep_checkpoints=args.keep_checkpoints,
    )
    assert isinstance(cfg, TrainConfig)
    validate(cfg)  # fail before any data work
    report = SkipReport(path=out / "data_report.jsonl")
    try:
        layout, utts = load_data_arguments(args, report=report)
    finally:
        report.save()
    prepared = prepare_corpus(
        utts,
        config=PrepareConfig(keep_unsupported_text=args.keep_unsupported_text),
        report=report,
        jobs=args.jobs,
        what="adaptation data",
    )
    print(prepared.summary())
    slm = None
    if args.wavlm:
        from ..train.slm import SpeechLM

        slm = SpeechLM.load(args.wavlm, config["model_params"]["slm"])
    elif (config["model_params"].get("slm") or {}).get("model"):
        from ..train.slm import SpeechLM

        slm = SpeechLM.try_load(config["model_params"]["slm"])
    description = {
        "spec": args.data,
        "layout": layout,
        "utterances": len(prepared.items),
        "speakers": sorted({it.speaker for it in prepared.items}),
        "hours": round(sum(it.num_frames for it in prepared.items) * 300 / 24000 / 3600, 4),
    }
    run_adaptation(
        args.checkpoint,
        args.config,
        prepared.items,
        cfg,
        out,
        data_description=description,
        sample_item=prepared.items[0],
        slm=slm,
    )
    print(f"adapted model in {out}")
    return 0
