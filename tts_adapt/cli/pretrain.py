"""``tts-adapt pretrain``: train a multi-speaker StyleTTS 2 from scratch (aligner, first, second stage)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .data import add_data_arguments, load_data_arguments

log = logging.getLogger(__name__)

# "The quick brown fox jumps over the lazy dog." as espeak-ng en-us IPA: a fixed text for the check
CHECK_PHONEMES = "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ."


def register(sub: argparse._SubParsersAction) -> None:
    from ..pretrain.config import STAGES, STYLE_SOURCES, TRACKERS, PretrainConfig

    d = PretrainConfig()
    p = sub.add_parser(
        "pretrain",
        help="pre-train a multi-speaker StyleTTS 2 from scratch on a corpus",
        description="Train StyleTTS 2 from random weights as the official train_first.py then "
        "train_second.py do, with the text aligner trained first and F0 from a DSP tracker. Re-running "
        "with the same --out resumes; torchrun runs it data-parallel. The result (model.pth + config.yml) "
        "loads with every command of the toolkit.",
    )
    p.add_argument(
        "--config", required=True, help="model config.yml, or a bundled one: base, micro, libritts"
    )
    add_data_arguments(p)
    p.add_argument("--out", required=True, help="output folder (checkpoints, logs, samples, model.pth)")
    p.add_argument(
        "--aligner-steps", type=int, default=d.aligner_steps, help="text-aligner (CTC + s2s) steps"
    )
    p.add_argument(
        "--first-steps", type=int, default=d.first_steps, help="first-stage (reconstruction) steps"
    )
    p.add_argument("--second-steps", type=int, default=d.second_steps, help="second-stage (prosody) steps")
    p.add_argument("--tma-start", type=int, default=d.tma_start, help="first-stage step at which TMA starts")
    p.add_argument(
        "--adv-start",
        type=int,
        help="first-stage step at which MPD/MSD adversarial training starts (default: never; "
        "reconstruction losses only, the cheapest on a CPU). Officially it starts with TMA; an "
        "earlier start (or one with TMA never on) is allowed",
    )
    p.add_argument(
        "--adv-warmup",
        type=int,
        default=d.adv_warmup,
        help="first-stage steps after --adv-start in which only MPD/MSD learn while the generator keeps "
        "its reconstruction losses (discriminators starting from nothing catch up before they teach)",
    )
    p.add_argument(
        "--disc-lr",
        type=float,
        help="MPD/MSD learning rate (default: --lr, as officially); it follows --lr-decay like the rest",
    )
    p.add_argument(
        "--init",
        help="start from these weights instead of random ones: a model to continue pre-training (an "
        "official-format .pth, a pretrain model.pth or a packaged model.safetensors of --config's "
        "architecture); modules it lacks keep their seeded initialisation. Usually with --stages first "
        "or first,second",
    )
    p.add_argument(
        "--first-train-only",
        nargs="+",
        metavar="PREFIX",
        help="train only these first-stage parameters, by qualified-name prefix (e.g. decoder.generator: "
        "fit a new generator under a trained model, usually with --init, whose weights under the "
        "prefixes are then not read: another generator type may start from its seeded initialisation) "
        "(default: every first-stage module)",
    )
    p.add_argument("--diff-start", type=int, default=d.diff_start, help="second-stage step for diffusion")
    p.add_argument(
        "--second-decoder",
        action="store_true",
        help="also train the decoder on predicted prosody in the second stage (official; slower)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="utterances per step")
    p.add_argument("--max-len", type=int, default=d.max_len, help="decoder crop in mel frames (12.5 ms)")
    p.add_argument(
        "--second-max-len",
        type=int,
        default=d.second_max_len,
        help="second-stage prosody crop in mel frames (>= 80: the style encoders see it)",
    )
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate of the first and second stage")
    p.add_argument(
        "--aligner-lr", type=float, default=d.aligner_lr, help="learning rate of the aligner stage"
    )
    p.add_argument("--bert-lr", type=float, default=d.bert_lr, help="learning rate of PL-BERT")
    p.add_argument(
        "--lr-decay",
        metavar="START:END",
        help="first-stage steps over which the learning rate falls (half cosine) from --lr to "
        "--lr-final (default: constant, as officially); may be added when extending a finished run "
        "whose last checkpoint is at or before START",
    )
    p.add_argument("--lr-final", type=float, help="learning rate at the end of --lr-decay (default: lr / 10)")
    p.add_argument(
        "--f0",
        default=d.f0,
        choices=TRACKERS,
        help="F0 tracker for the targets (yin-hs: YIN refined by harmonic sum, precise enough for the "
        "upper harmonics of a 'harmonic' decoder)",
    )
    p.add_argument(
        "--alignment",
        default=d.alignment,
        choices=("attention", "ctc", "recognizer"),
        help="monotonic search over the aligner's attention (official), its CTC posteriors, or the "
        "posteriors of a trained phoneme recogniser (--recognizer; far better paths when the aligner "
        "is trained from nothing on a small corpus)",
    )
    p.add_argument(
        "--recognizer",
        help="CTC phoneme recogniser for --alignment recognizer: `tts-adapt train-per` output trained "
        "on the same corpus, or the official ASR .pth",
    )
    p.add_argument(
        "--style-source",
        default=d.style_source,
        choices=STYLE_SOURCES,
        help="where the first stage takes the decoder's acoustic style from: another segment of the "
        "same utterance (official), or another utterance of the same voice (the batch's style "
        "reference; the style then carries only what a voice's utterances share)",
    )
    p.add_argument("--stages", default=",".join(STAGES), help="stages to run, in order")
    p.add_argument("--seed", type=int, default=d.seed, help="seeds weights, data order and every draw")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--log-every", type=int, default=d.log_every, help="steps between log lines")
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps between checkpoints")
    p.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between audio samples")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers for data preparation")
    p.add_argument("--dry-run", action="store_true", help="check config and data, print the plan, and exit")
    p.set_defaults(func=run)

    p = sub.add_parser(
        "package-model",
        help="turn a finished pre-training run into a compact base model (safetensors + config.yml)",
        description="Keep what adaptation uses (inference modules, text aligner, MPD/MSD), drop the "
        "untrained JDC and WavLM discriminator, store float16, and report what float16 costs on a "
        "seeded synthesis.",
    )
    p.add_argument("--run", required=True, help="a finished 'tts-adapt pretrain' folder")
    p.add_argument("--out", required=True, help="output folder (model.safetensors, config.yml)")
    p.add_argument("--float32", action="store_true", help="keep float32 weights (twice the size)")
    p.add_argument("--reference", help="a recording to measure float16 against float32 on (optional)")
    p.set_defaults(func=run_package)


def run_package(args: argparse.Namespace) -> int:
    import json

    from ..pretrain.package import check_half, package_run

    run_dir = Path(args.run)
    if not (run_dir / "model.safetensors").exists():
        raise FileNotFoundError(f"{run_dir} has no model.safetensors: is the pre-training run finished?")
    path = package_run(run_dir, args.out, half=not args.float32)
    size = path.stat().st_size / 1e6
    report: dict = {"size_mb": round(size, 2)}
    if args.reference and not args.float32:
        from ..audio import load_audio

        report["float16_vs_float32"] = check_half(
            run_dir, args.out, CHECK_PHONEMES, load_audio(args.reference)
        )
    print(f"wrote {path} ({size:.1f} MB) and {Path(args.out) / 'config.yml'}")
    print(json.dumps(report))
    return 0


def resolve_model_config(name: str):
    from ..models.styletts2.config import named_config

    return named_config(name)


def _decay_steps(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    from ..pretrain.config import PretrainConfigError

    try:
        start, end = (int(x) for x in text.split(":"))
    except ValueError:
        raise PretrainConfigError(f"--lr-decay must be START:END (two step numbers), got {text!r}") from None
    return start, end


def pretrain_config(args: argparse.Namespace):
    """The run's validated :class:`PretrainConfig` from parsed flags (no data, no model needed)."""
    from ..pretrain.config import PretrainConfig, validate

    cfg = PretrainConfig(
        aligner_steps=args.aligner_steps,
        first_steps=args.first_steps,
        second_steps=args.second_steps,
        tma_start=args.tma_start,
        adv_start=args.adv_start,
        adv_warmup=args.adv_warmup,
        disc_lr=args.disc_lr,
        diff_start=args.diff_start,
        second_decoder=args.second_decoder,
        first_train_only=tuple(args.first_train_only) if args.first_train_only else None,
        batch_size=args.batch_size,
        max_len=args.max_len,
        second_max_len=args.second_max_len,
        lr=args.lr,
        aligner_lr=args.aligner_lr,
        bert_lr=args.bert_lr,
        lr_decay=_decay_steps(args.lr_decay),
        lr_final=args.lr_final,
        f0=args.f0,
        alignment=args.alignment,
        recognizer=args.recognizer,
        style_source=args.style_source,
        seed=args.seed,
        log_every=args.log_every,
        save_every=args.save_every,
        sample_every=args.sample_every,
        device=args.device,
        init=args.init,
    )
    validate(cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    import torch
    import yaml

    from ..data import SkipReport
    from ..data.prepare import prepare_corpus
    from ..models.styletts2 import build_model
    from ..models.styletts2.checkpoint import load_available
    from ..models.styletts2.config import load_config
    from ..models.styletts2.model import MODULE_NAMES
    from ..pretrain.config import STAGES
    from ..pretrain.runner import pretrain
    from ..train.distributed import init_from_env
    from ..utils.io import write_text
    from ..utils.logging import add_file_log

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"--stages: unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    cfg = pretrain_config(args)
    config_path = Path(resolve_model_config(args.config))
    config = load_config(config_path)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    report = SkipReport(path=out / "data_report.jsonl")
    layout, utts = load_data_arguments(args, report=report)
    prepared = prepare_corpus(utts, report=report, jobs=args.jobs, what="pre-training data")
    items = prepared.items
    speakers = sorted({it.speaker for it in items})
    hours = sum(it.num_frames for it in items) * 300 / 24000 / 3600
    plan = (
        f"pre-training plan: {len(items)} utterances, {len(speakers)} speakers, {hours:.2f} h ({layout})\n"
        f"  model: {config_path} ({'multi' if config['model_params'].get('multispeaker', True) else 'single'}"
        f"-speaker, decoder {config['model_params']['decoder'].get('type', 'hifigan')})\n"
        f"  stages: {', '.join(f'{s} {cfg.stage_steps(s)} steps' for s in stages)}; batch {cfg.batch_size}, "
        f"decoder crop {cfg.max_len} frames; lr {cfg.lr:g}"
        + (
            f", first-stage cosine decay to {cfg.final_lr:g} over steps {cfg.lr_decay[0]}-{cfg.lr_decay[1]}"
            if cfg.lr_decay
            else ""
        )
        + "\n"
        + (f"  weights from: {cfg.init}\n" if cfg.init else "")
        + (f"  first stage trains only: {', '.join(cfg.first_train_only)}\n" if cfg.first_train_only else "")
        + f"  first stage: TMA from step {cfg.tma_start}, adversarial "
        f"{'from step ' + str(cfg.adv_start) if cfg.adv_start is not None else 'off'}"
        f"{f' (discriminators alone for {cfg.adv_warmup} steps)' if cfg.adv_warmup else ''}"
        f"{f', discriminator lr {cfg.disc_lr:g}' if cfg.disc_lr is not None else ''}; "
        f"F0 targets: {cfg.f0}; "
        f"alignment: {cfg.alignment}{' (' + cfg.recognizer + ')' if cfg.recognizer else ''}; "
        f"style from another {'utterance of the voice' if cfg.style_source == 'reference' else 'segment'}\n"
        f"  second stage: diffusion from step {cfg.diff_start}; decoder "
        f"{'trained' if cfg.second_decoder else 'frozen'}"
    )
    print(plan)
    if len(speakers) < 2 and config["model_params"].get("multispeaker", True):
        raise ValueError(
            f"{args.data}: a multi-speaker model needs at least two speakers, found {len(speakers)}"
        )
    if cfg.recognizer is not None:
        from ..alignment.recognizer import load_recognizer

        load_recognizer(cfg.recognizer)  # a missing or foreign file fails here, before anything is written
    initial = None
    if cfg.init is not None:  # a missing file or another architecture fails here too
        torch.manual_seed(cfg.seed)
        initial = build_model(config)
        # parameters trained alone (--first-train-only) may be new: absent from or unlike --init's
        loaded = load_available(initial, cfg.init, fresh=cfg.first_train_only or ())
        kept = sorted(set(MODULE_NAMES) - set(loaded))
        print(f"  starting weights: {', '.join(loaded)}" + (f"; seeded: {', '.join(kept)}" if kept else ""))
    if args.dry_run:
        return 0
    dist = init_from_env()
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        add_file_log(out / "pretrain.log")
        write_text(out / "config.yml", config_path.read_text(encoding="utf-8"))
    if initial is not None:
        model = initial
    else:
        torch.manual_seed(cfg.seed)
        model = build_model(config)
    by_speaker = {}
    for it in items:
        by_speaker.setdefault(it.speaker, it)
    result = pretrain(
        model, cfg, items, out, dist=dist, sample_items=list(by_speaker.values())[:1], stages=stages
    )
    if dist.main:
        # the trained sigma_data travels in the config, as in the official config.yml
        final = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        final["model_params"]["diffusion"]["dist"]["sigma_data"] = round(float(model.diffusion.sigma_data), 6)
        write_text(out / "config.yml", yaml.safe_dump(final, sort_keys=False))
        print(f"pre-trained model: {result} with {out / 'config.yml'}")
    return 0
