"""``tts-adapt adapt``: fine-tune the pre-trained StyleTTS 2 on a target speaker (LoRA + Laplace prior)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .data import add_data_arguments, add_text_argument, load_data_arguments

log = logging.getLogger(__name__)


def joint_start(text: str) -> int | str:
    """``--joint-start``: a step, or ``never`` (no SLM-adversarial stage)."""
    from ..train.resolve import NEVER

    if text.strip().lower() == NEVER:
        return NEVER
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a step number or 'never', got {text!r}") from None


def parse_strength(text: str) -> float | dict[str, float]:
    """``1e3`` or per-component ``decoder=1e4,default=1e3``."""
    if "=" not in text:
        return float(text)
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        out[name.strip()] = float(value)
    return out


# Plain LoRA runs on any data without a curvature file; a curvature file given means its prior.
DEFAULT_METHOD = "lora"
DEFAULT_WITH_CURVATURE = "lora+prior"


def default_method(args: argparse.Namespace) -> tuple[str, str]:
    """``(method, source)``: ``--method``, else the default that ``--curvature`` decides."""
    if args.method:
        return args.method, "flag"
    if args.curvature:
        return DEFAULT_WITH_CURVATURE, "default with --curvature"
    return DEFAULT_METHOD, "default without --curvature"


def lora_alpha(args: argparse.Namespace) -> float:
    """``--lora-alpha``, or the deprecated ``--alpha`` (which synth uses for the style mix)."""
    old = getattr(args, "deprecated_alpha", None)
    if old is None:
        return args.lora_alpha
    log.warning("adapt --alpha is deprecated: it is --lora-alpha (synth's --alpha is the style mix)")
    return old


def register(sub: argparse._SubParsersAction) -> None:
    from ..models.registry import add_model_arguments
    from ..objective.f0_sources import F0_SOURCES
    from ..train.config import METHODS, VOICE_MODES, TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "adapt",
        help="adapt the pre-trained model to a target speaker",
        description="Fine-tune StyleTTS 2 on a target speaker with full, linear, LoRA or LoRA + "
        "Laplace-prior training. Re-running with the same --out resumes; torchrun runs it data-parallel.",
    )
    add_model_arguments(p)
    p.add_argument(
        "--train-config",
        help="fine-tuning config whose training keys (epochs, batch_size, max_len, optimizer_params, "
        "loss_params.diff_epoch/joint_epoch, slmadv_params, data_params) set what no flag sets "
        "(default: the shipped one, the official Configs/config_ft.yml values); the checkpoint's "
        "config.yml is never read for these",
    )
    add_data_arguments(p)
    add_text_argument(p)
    p.add_argument(
        "--out", required=True, help="output folder (adapter, config, manifest, logs, checkpoints)"
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        help="what is trained, and whether the prior applies; a +prior method needs --curvature "
        f"(default: {DEFAULT_WITH_CURVATURE} with --curvature, else {DEFAULT_METHOD})",
    )
    p.add_argument(
        "--curvature",
        help="curvature file from 'tts-adapt curvature', or 'l2sp' (identity): the prior's H; given "
        f"without --method, it means --method {DEFAULT_WITH_CURVATURE}",
    )
    p.add_argument(
        "--lambda",
        dest="strength",
        help=f"prior strength λ, or per component e.g. decoder=1e4,default=1e3; only with a prior "
        f"(default: {d.strength:g})",
    )

    def given(what: str, value: object, key: str) -> str:
        return f"{what} (default: the fine-tuning config's {key}, else {value})"

    p.add_argument("--steps", type=int, help=given("optimiser steps", d.steps, "epochs in steps"))
    p.add_argument("--batch-size", type=int, help=given("utterances per step", d.batch_size, "batch_size"))
    p.add_argument(
        "--prior-missing-layers",
        default=d.prior_missing,
        choices=("error", "skip"),
        help="LoRA layers the curvature file does not cover: stop with an error, or train them without "
        "a prior",
    )
    p.add_argument(
        "--curvature-scaling",
        choices=("ours", "reference"),
        help=f"(default: {d.curvature_scaling}) ours: λ/2 with G normalised per utterance; reference: the "
        "reference implementation's "
        "per-frame G and λ without ½, so its λ values (1e3-1e4 for TTS) transfer (kfac, diag, l2sp)",
    )
    p.add_argument(
        "--curvature-any-weights",
        action="store_true",
        help="accept a curvature file estimated on other weights of the same architecture",
    )
    p.add_argument(
        "--batching",
        choices=("random", "length"),
        help="random: the official batches (a fresh shuffle every epoch, --batch-size utterances each, "
        "the last partial batch dropped); length: utterances of similar length grouped together, which "
        "pads less but on a small corpus repeats nearly the same batches every epoch (default: length "
        "with --frame-budget, else random)",
    )
    p.add_argument(
        "--frame-budget",
        type=int,
        help="max padded mel frames per length-grouped batch (implies --batching length)",
    )
    p.add_argument("--grad-accum", type=int, help=f"batches accumulated per step (default: {d.grad_accum})")
    p.add_argument("--max-len", type=int, help=given("decoder crop in mel frames", d.max_len, "max_len"))
    p.add_argument(
        "--lr", type=float, help=given("learning rate of most modules", d.lr, "optimizer_params.lr")
    )
    p.add_argument(
        "--bert-lr", type=float, help=given("PL-BERT learning rate", d.bert_lr, "optimizer_params.bert_lr")
    )
    p.add_argument(
        "--ft-lr",
        type=float,
        help=given("decoder/style encoder learning rate", d.ft_lr, "optimizer_params.ft_lr"),
    )
    p.add_argument(
        "--diff-start",
        type=int,
        help=given("step at which style diffusion trains", d.diff_start, "loss_params.diff_epoch in steps"),
    )
    p.add_argument(
        "--joint-start",
        type=joint_start,
        help=given(
            "step at which the SLM-adversarial stage starts, or 'never'",
            "never",
            "loss_params.joint_epoch in steps",
        ),
    )
    p.add_argument("--rank", type=int, default=d.lora_rank, help="LoRA rank")
    p.add_argument(
        "--lora-alpha",
        type=float,
        default=d.lora_alpha,
        help="LoRA scale: the update is lora-alpha/rank · B·A",
    )
    # the former name of --lora-alpha (synth's --alpha is the style mix): accepted, with a warning
    p.add_argument("--alpha", dest="deprecated_alpha", type=float, help=argparse.SUPPRESS)
    p.add_argument("--lora-dropout", type=float, default=d.lora_dropout, help="dropout on the LoRA input")
    p.add_argument("--lora-layers", default="linear", help="layer kinds for LoRA: linear,conv1d,lstm")
    p.add_argument("--lora-targets", help="comma-separated modules/layers/globs (default: the paper's)")
    p.add_argument(
        "--f0",
        choices=F0_SOURCES,
        help="F0 targets: JDC network, or the pYIN/YIN DSP trackers (yin-hs: YIN refined by harmonic "
        "sum) (default: the config's f0_source, "
        "else jdc)",
    )
    p.add_argument(
        "--no-dropout", action="store_true", help="train every module in eval mode (deterministic)"
    )
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), help=f"mixed precision (default: {d.amp})")
    p.add_argument("--seed", type=int, help=f"random seed; same seed, same run (default: {d.seed})")
    p.add_argument("--device", default="auto", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--log-every", type=int, default=d.log_every, help="steps between loss log lines")
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps between resumable checkpoints")
    p.add_argument(
        "--sample-every", type=int, default=d.sample_every, help="steps between audio samples in the logs"
    )
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, help="newest checkpoints kept")
    p.add_argument("--jobs", type=int, default=1, help="parallel data preparation workers")
    p.add_argument("--wavlm", help="WavLM weights (folder or hub id in the local cache) for the SLM losses")
    p.add_argument(
        "--no-slm",
        action="store_true",
        help="train without the WavLM terms (lambda_slm and the SLM-adversarial stage); without this flag a "
        "run that needs WavLM and finds no weights stops",
    )
    p.add_argument(
        "--ood-texts",
        help="out-of-distribution texts for the SLM-adversarial stage, official OOD_data format "
        "(phonemes, or path|phonemes|speaker per line). Without one the stage stops the run before "
        "training, unless --no-ood (default: the fine-tuning config's data_params.OOD_data)",
    )
    p.add_argument(
        "--no-ood",
        action="store_true",
        help="run the SLM-adversarial stage on the batch's own texts only (officially half of its steps "
        "use out-of-distribution texts)",
    )
    voice = p.add_argument_group("the new voice (voice-pack models: Kokoro)")
    voice.add_argument("--voice-name", help="name of the learned voice (default: the target speaker's name)")
    voice.add_argument(
        "--voice-init",
        default=d.voice_init,
        help="stock voice the new one starts from, or 'nearest' (the stock voice most similar to the target, "
        "by speaker similarity) (default: nearest)",
    )
    voice.add_argument(
        "--voice-mode",
        default=d.voice_mode,
        choices=VOICE_MODES,
        help="offset: the stock pack plus one learned shift (keeps its per-length rows); vector: one learned "
        f"style for every length (default: {d.voice_mode})",
    )
    voice.add_argument(
        "--voice-lr", type=float, default=d.voice_lr, help=f"its learning rate (default: {d.voice_lr})"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check config, checkpoint, data, curvature and weights, print the plan, and exit (no training)",
    )
    p.set_defaults(func=run)


FLAG_FIELDS = {
    "steps": "steps",
    "batch_size": "batch_size",
    "max_len": "max_len",
    "lr": "lr",
    "bert_lr": "bert_lr",
    "ft_lr": "ft_lr",
    "diff_start": "diff_start",
    "joint_start": "joint_start",
}


def ood_source(args: argparse.Namespace, train_config: dict) -> tuple[str | None, str | None]:
    """``(file, missing)``: ``--ood-texts``, else the fine-tuning config's ``data_params.OOD_data`` when
    that file exists (as given, or beside the fine-tuning config); ``missing`` names a listed file that
    exists in neither place."""
    from ..train.resolve import FINETUNE_CONFIG

    if args.ood_texts:
        if not Path(args.ood_texts).is_file():
            raise FileNotFoundError(f"--ood-texts {args.ood_texts} does not exist")
        return args.ood_texts, None
    listed = (train_config.get("data_params") or {}).get("OOD_data")
    if not listed:
        return None, None
    home = Path(getattr(args, "train_config", None) or FINETUNE_CONFIG).parent
    for candidate in (Path(listed), home / listed):
        if candidate.is_file():
            return str(candidate), None
    return None, f"data_params.OOD_data {listed} (as given, or beside the fine-tuning config)"


def model_finetune_config(config: dict) -> str | None:
    """The fine-tuning config a model's own config names (``finetune_config``, beside it), if any: Kokoro's
    training keys are not the official StyleTTS 2 ones."""
    from ..models.styletts2.config import resolve_path

    name = config.get("finetune_config")
    if not name:
        return None
    found = resolve_path(name, config)
    if found is None:
        raise FileNotFoundError(f"the model's config names finetune_config {name}, which is not beside it")
    return str(found)


def resolve_arguments(args: argparse.Namespace, config: dict, n_utterances: int, world: int | None = None):
    """The run's validated settings from parsed flags, the fine-tuning config (``--train-config``) and
    the checkpoint's ``config.yml`` (``config``: model keys only): exactly what ``adapt`` trains with.

    Separate from :func:`run` so that a recipe's stage can be checked without data or a checkpoint.
    """
    from ..objective.finetune import LossWeights
    from ..train import validate
    from ..train.resolve import FINETUNE_CONFIG, load_train_config, resolve_settings, short_crop

    train_path = getattr(args, "train_config", None) or model_finetune_config(config)
    train_config = load_train_config(train_path)
    ood, missing = ood_source(args, train_config)
    flags = {name: getattr(args, attr) for attr, name in FLAG_FIELDS.items()}
    batching = getattr(args, "batching", None) or ("length" if args.frame_budget else None)
    method, method_source = default_method(args)
    flags.update(
        method=method,
        batching=batching,
        frame_budget=args.frame_budget,
        grad_accum=args.grad_accum,
        lora_rank=args.rank,
        lora_alpha=lora_alpha(args),
        lora_dropout=args.lora_dropout,
        lora_layer_types=tuple(s.strip() for s in args.lora_layers.split(",") if s.strip()),
        lora_targets=[s.strip() for s in args.lora_targets.split(",")] if args.lora_targets else None,
        curvature=args.curvature,
        strength=parse_strength(args.strength) if args.strength is not None else None,
        prior_missing=args.prior_missing_layers,
        curvature_any_weights=args.curvature_any_weights,
        curvature_scaling=args.curvature_scaling,
        seed=args.seed,
        f0=args.f0,
        dropout=not args.no_dropout,
        amp=args.amp,
        device=args.device,
        log_every=args.log_every,
        save_every=args.save_every,
        sample_every=args.sample_every,
        keep_checkpoints=args.keep_checkpoints,
        no_slm=args.no_slm or None,
        ood_texts=ood,
        no_ood=getattr(args, "no_ood", False) or None,
        voice_name=getattr(args, "voice_name", None),
        voice_init=getattr(args, "voice_init", "nearest"),
        voice_mode=getattr(args, "voice_mode", "offset"),
        voice_lr=getattr(args, "voice_lr", 1e-2),
    )
    resolved = resolve_settings(
        train_config,
        flags,
        n_utterances,
        config_path=str(train_path or FINETUNE_CONFIG),
        label=(
            "fine-tuning config"
            if getattr(args, "train_config", None)
            else "the model's fine-tuning config"
            if train_path
            else "shipped fine-tuning config"
        ),
        checkpoint_config=config,
    )
    resolved.ood_missing = missing
    resolved.sources["method"] = method_source
    if args.f0 is None and config.get("f0_source"):  # a model key: which F0 targets the model can use
        resolved.cfg.f0 = str(config["f0_source"])
        resolved.sources["f0"] = "checkpoint config.yml: f0_source"
    resolved.model_keys["loss weights"] = (
        " ".join(f"{k}={v:g}" for k, v in vars(LossWeights.from_config(config.get("loss_params"))).items()),
        "checkpoint config.yml: loss_params.lambda_*",
    )
    world = int(os.environ.get("WORLD_SIZE", "1")) if world is None else world
    validate(resolved.cfg, world=world, short_crop=short_crop(config))
    return resolved


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import PrepareConfig, SkipReport, prepare_corpus
    from ..data.ood import read_ood_texts
    from ..models.registry import resolve_model
    from ..models.styletts2.config import load_config, text_settings
    from ..text import Phonemizer
    from ..train import run_adaptation
    from ..train.objective import LossWeights
    from ..train.resolve import check_ood, check_slm, describe_settings

    args.checkpoint, args.config = resolve_model(args.model, args.checkpoint, args.config)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    if (out / "manifest.json").exists() and not args.dry_run:
        print(f"{out} already holds a finished adaptation (manifest.json); use another --out to train again")
        return 0
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint} does not exist")
    config = load_config(args.config)
    report = SkipReport(path=out / "data_report.jsonl") if not args.dry_run else None
    layout, utts = load_data_arguments(args, report=report)
    if not utts:
        raise ValueError(f"--data {args.data} holds no utterance")
    resolved = resolve_arguments(args, config, len(utts))  # fail before any data work
    cfg = resolved.cfg
    if cfg.curvature and cfg.curvature != "l2sp" and not Path(cfg.curvature).is_file():
        raise FileNotFoundError(f"--curvature {cfg.curvature} does not exist")
    joint = cfg.joint_start is not None and cfg.joint_start < cfg.steps
    if cfg.ood_texts:
        n_ood = len(read_ood_texts(cfg.ood_texts, cfg.ood_min_length))
        ood = f"{cfg.ood_texts} ({n_ood} texts of >= {cfg.ood_min_length} characters), half of the SLM steps"
    elif cfg.no_ood and joint:
        ood = "none (--no-ood): the SLM-adversarial stage uses the batch's own texts"
    else:
        ood = "not needed"
    slm, slm_found = None, None
    slm_cfg = config["model_params"].get("slm") or {}
    if not cfg.no_slm:
        from ..train.slm import SpeechLM

        if args.wavlm:
            slm, slm_found = SpeechLM.load(args.wavlm, slm_cfg), args.wavlm
        elif slm_cfg.get("model"):
            slm = SpeechLM.try_load(slm_cfg)
            slm_found = slm_cfg["model"] if slm is not None else None
    lambda_slm = LossWeights.from_config(config.get("loss_params")).slm
    slm_desc = check_slm(cfg, lambda_slm, slm_found)
    check_ood(cfg, slm_found, resolved.ood_missing)
    print(describe_settings(resolved))
    if args.dry_run:
        return dry_run(args, cfg, utts, slm_desc, ood)
    layout_desc = layout
    prepared = prepare_corpus(
        utts,
        config=PrepareConfig(keep_unsupported_text=args.keep_unsupported_text),
        phonemizer=Phonemizer(word_tokenize=text_settings(config)["word_tokenize"]),
        report=report,
        jobs=args.jobs,
        what="adaptation data",
    )
    print(prepared.summary())
    if config.get("voice_packs") and cfg.voice_init == "nearest":
        cfg.voice_init = resolve_nearest_voice(prepared.items)
    description = {
        "spec": args.data,
        "layout": layout_desc,
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


def resolve_nearest_voice(items) -> str:
    """The stock voice most similar to the target's recordings (Resemblyzer), logged with the runners-up."""
    from ..models.kokoro.nearest import nearest_voice

    name, ranking = nearest_voice([str(it.utterance.audio_path) for it in items])
    shown = ", ".join(f"{n} {s:.3f}" for n, s in ranking[:5])
    log.info("the new voice starts from %s, the stock voice nearest the target (%s)", name, shown)
    return name


def dry_run(args: argparse.Namespace, cfg, utts, slm_desc: str, ood: str) -> int:
    """Load the checkpoint, set the method up on it and print the plan; nothing is trained or written."""
    from ..models.styletts2 import load_official
    from ..train.plan import adaptation_plan

    model = load_official(args.checkpoint, args.config)
    print(adaptation_plan(model, cfg, utts, slm=slm_desc, ood=ood))
    print("dry run: every check passed; nothing was trained or written")
    return 0
