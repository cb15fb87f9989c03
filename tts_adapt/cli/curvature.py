"""``tts-adapt curvature``: estimate the Laplace-prior curvature of a pre-trained StyleTTS 2."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..models.registry import add_model_arguments

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curvature",
        help="estimate curvature (l2sp/diag/kfac/ekfac) of the pre-training loss for the Laplace prior",
        description="One pass (two for ekfac) over pre-training data with the model's weights fixed. "
        "Resumable: rerun the same command after an interruption. Multi-GPU: launch with torchrun.",
    )
    add_model_arguments(p)
    p.add_argument(
        "--data",
        help="pre-training corpus (LibriTTS folder, other corpus or StyleTTS 2 file list; for Kokoro, "
        "a corpus of its own speech: make-corpus --engine kokoro --voice all)",
    )
    p.add_argument("--subsets", help="LibriTTS subsets to read, comma-separated (default: all present)")
    p.add_argument("--speakers", help="only these speakers, comma-separated")
    p.add_argument("--audio-root", help="audio root for a file list (or give it after '::' in --data)")
    p.add_argument("--mic", default="mic1", choices=("mic1", "mic2"), help="VCTK microphone")
    p.add_argument(
        "--method", default="kfac", choices=["l2sp", "diag", "kfac", "ekfac"], help="curvature approximation"
    )
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument(
        "--max-utterances",
        type=int,
        default=1000,
        help="random subset size (the paper uses 1000 LibriTTS utterances); 0 = all",
    )
    p.add_argument(
        "--targets",
        default=None,
        help="comma-separated layer/module names or glob patterns (default: the paper's LoRA targets)",
    )
    p.add_argument(
        "--layer-types",
        default="linear",
        help="layer types that module names and patterns expand to: linear,conv1d",
    )
    p.add_argument(
        "--objective",
        default="styletts2",
        choices=["styletts2", "finetune", "full", "mel", "text"],
        help="per-utterance loss, always the adaptation trainer's: every term but the adversarial ones "
        "(styletts2); the same plus the waveform-adversarial term (finetune); every term, the WavLM one "
        "included, as the reference implementation (full; needs WavLM weights); mel reconstruction only "
        "(mel); the text-side terms only (text: no decoder, fast, decoder layers get none) "
        "(default: styletts2)",
    )
    p.add_argument(
        "--scaling",
        default="ours",
        choices=["ours", "reference"],
        help="ours: the Laplace approximation's statistics (G per utterance); reference: the reference "
        "implementation's, per call of each layer (means of a·aᵀ and g·gᵀ over each call, g of the "
        "batch-mean loss, summed over a batch's calls, divided by the batches), for adapt "
        "--curvature-scaling reference (kfac and diag, Linear layers)",
    )
    p.add_argument(
        "--dropout",
        action="store_true",
        help="estimate with the official training-time dropout (text aligner, text encoder, predictor, "
        "PL-BERT) as the reference implementation does (default: every module in eval mode)",
    )
    p.add_argument("--wavlm", help="WavLM weights (folder or hub id in the local cache) for --objective full")
    p.add_argument(
        "--max-len",
        "--crop-frames",
        dest="max_len",
        type=int,
        default=None,
        help="decoder crop in mel frames, as adapt's --max-len (default: max_len of the fine-tuning "
        "config, as for adapt)",
    )
    p.add_argument(
        "--train-config",
        help="fine-tuning config whose max_len sets the crop (default: the shipped one, as adapt's)",
    )
    p.add_argument("--max-frames", type=int, default=4000, help="mel frames per batch (padded)")
    p.add_argument("--max-batch-size", type=int, default=16, help="most utterances in one batch")
    p.add_argument("--min-seconds", type=float, default=1.1, help="skip shorter utterances")
    p.add_argument("--max-seconds", type=float, default=30.0, help="skip longer utterances")
    p.add_argument("--seed", type=int, default=0, help="random seed (utterance subset and per-batch noise)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--state", default=None, help="partial-state file for resuming (default: <out>.partial)")
    p.add_argument("--checkpoint-every", type=int, default=20, help="batches between partial-state saves")
    p.add_argument("--jobs", type=int, default=1, help="parallel jobs for data preparation")
    p.add_argument(
        "--report", default=None, help="data report, JSON lines (default: <out>.data_report.jsonl)"
    )
    p.add_argument(
        "--keep-unsupported-text",
        action="store_true",
        help="keep transcripts with characters the English front end cannot read (emoji, other "
        "scripts) (default: skipped, and listed as unsupported_text in the data report)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check checkpoint, config, targets and data, print the plan (layers, data, size of the result) "
        "and exit: no curvature, data report or partial state is written (prepared features are cached, "
        "as in a real run)",
    )
    p.set_defaults(func=run)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def resolve_max_len(flag: int | None, train_config: dict | None) -> int:
    """The decoder crop: the flag, else ``max_len`` of the fine-tuning config (as ``adapt`` resolves
    it, so that the curvature is that of the loss adapt trains), else adapt's default."""
    from ..train.config import TrainConfig

    if flag is not None:
        return int(flag)
    value = (train_config or {}).get("max_len")
    return int(value) if value is not None else TrainConfig.max_len


def _init_distributed(device: str) -> tuple[int, int, str]:
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, dist.get_world_size(), device


def run(args: argparse.Namespace) -> int:
    import torch

    from ..curvature import estimate
    from ..curvature.batches import DataSpec, corpus_batches
    from ..curvature.objectives import get_objective
    from ..models.registry import resolve_model
    from ..models.styletts2 import load_official
    from ..models.styletts2.config import text_settings

    args.checkpoint, args.config = resolve_model(args.model, args.checkpoint, args.config)

    out = Path(args.out)
    for path, what in ((args.checkpoint, "checkpoint"), (args.config, "config")):
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} not found: {path}")
    if args.method != "l2sp" and not args.data:
        raise ValueError(f"--data is required for method {args.method} (only l2sp needs no data)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world, device = _init_distributed(device)
    targets = [t for t in args.targets.split(",") if t.strip()] if args.targets else None
    layer_types = tuple(t.strip() for t in args.layer_types.split(",") if t.strip())

    model = load_official(args.checkpoint, args.config).to(torch.device(device)).eval()
    from ..train.resolve import load_train_config
    from .adapt import model_finetune_config

    train_path = args.train_config or model_finetune_config(model.config)
    max_len = resolve_max_len(args.max_len, load_train_config(train_path))
    batches, description = [], {"data": None}
    if args.method != "l2sp":
        spec = DataSpec(
            data=args.data,
            subsets=_split(args.subsets),
            speakers=_split(args.speakers),
            audio_root=args.audio_root,
            mic=args.mic,
            max_utterances=args.max_utterances or None,
            seed=args.seed,
            max_frames=args.max_frames,
            max_batch_size=args.max_batch_size,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            keep_unsupported_text=args.keep_unsupported_text,
            text=text_settings(model.config),
        )
        if world > 1 and rank != 0:
            torch.distributed.barrier()  # rank 0 prepares (phonemises, caches features) first
        from ..data import SkipReport

        report_path = args.report or f"{out}.data_report.jsonl"
        report = SkipReport(path=report_path if rank == 0 and not args.dry_run else None)
        batches, description = corpus_batches(
            spec, progress=not args.no_progress and rank == 0, jobs=args.jobs, report=report
        )
        if rank == 0:
            print(report.line(description["utterances"]))
        if world > 1 and rank == 0:
            torch.distributed.barrier()
        description.update(objective=args.objective, max_len=max_len, checkpoint=Path(args.checkpoint).name)
        if args.dropout:
            description["dropout"] = True
    slm = None
    if args.objective == "full":
        from ..train.slm import SpeechLM

        slm_cfg = model.config["model_params"].get("slm") or {}
        slm = SpeechLM.load(args.wavlm, slm_cfg) if args.wavlm else SpeechLM.try_load(slm_cfg)
        if slm is None:
            raise ValueError(
                "--objective full includes the WavLM feature-matching term and needs WavLM weights: none "
                "were found (model_params.slm.model in the local Hugging Face cache, or --wavlm FOLDER); "
                "use --objective finetune to leave that term out"
            )
        slm = slm.to(torch.device(device))
    loss_fn = get_objective(
        args.objective,
        max_len=max_len,
        slm=slm,
        dropout=args.dropout,
        reconstruction=args.scaling == "reference",
    )
    if args.dry_run:
        return dry_run(args, model, targets, layer_types, description if batches else None, max_len, device)
    curv = estimate(
        model,
        batches,
        loss_fn,
        args.method,
        targets,
        layer_types=layer_types,
        seed=args.seed,
        state_path=args.state or f"{out}.partial",
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        total_utterances=getattr(batches, "num_utterances", None),
        data_description=description,
        scaling=args.scaling,
    )
    if rank == 0:
        curv.save(out)
        print(
            f"wrote {out}: {args.method} curvature of {len(curv.info)} layers from "
            f"{curv.num_utterances} utterances"
            + (" (reference scaling)" if args.scaling == "reference" else "")
        )
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


def dry_run(args, model, targets, layer_types, data, max_len: int, device: str) -> int:
    """Resolve the targets on the loaded model and print the plan; nothing is estimated or written."""
    from ..adapters.targets import resolve_targets
    from ..curvature.plan import curvature_plan

    names = resolve_targets(model, targets, layer_types)
    settings = {
        "objective": args.objective if args.method != "l2sp" else "none",
        "scaling": args.scaling,
        "dropout": "official training-time split" if args.dropout else "off (eval mode)",
        "decoder crop": f"{max_len} mel frames",
        "device": device,
        "output": args.out,
    }
    print(curvature_plan(model, names, args.method, data, settings))
    print("dry run: every check passed; no curvature, report or partial state was written")
    return 0
