"""``tts-adapt init-model`` and ``tts-adapt export``: official-format checkpoints in and out."""

from __future__ import annotations

import argparse

from ..models.registry import MODEL_NAMES

NAMED_CONFIGS = ("base", "base-istftnet", "libritts", "micro", "kokoro")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init-model",
        help="write a randomly initialised model as an official-format checkpoint (tests, smoke runs)",
    )
    bundled = ", ".join(NAMED_CONFIGS)
    p.add_argument("--config", required=True, help=f"config.yml, or a bundled one: {bundled}")
    p.add_argument("--out", required=True, help="output .pth (official second-stage layout)")
    p.add_argument("--config-out", help="also copy the config here (checkpoint and config travel together)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial weights")
    p.add_argument(
        "--frames-per-token",
        type=float,
        help="make the random duration head speak at this rate, 3 = natural (default: leave it random, "
        "about 25 frames = 0.6 s per phoneme)",
    )
    p.set_defaults(func=run_init)

    p = sub.add_parser(
        "export",
        help="write a model (an adapted one merged) as an official-format checkpoint or as ONNX graphs",
        description="--format pth (default): an adapted model, merged, as an official-format checkpoint for "
        "the official tools. --format onnx: the inference graphs for onnxruntime ('tts-adapt synth --onnx "
        "DIR'), of a base model (--model, --checkpoint/--config) or of an adapted model (--adapted). "
        "--format voice: the voice an adapted Kokoro folder learned, alone, in the format --out's suffix "
        "names: .pt (a [510, 1, 256] tensor, as Kokoro's own voices), .bin (raw float32, as kokoro-js "
        "reads it) or .safetensors.",
    )
    p.add_argument("--format", choices=("pth", "onnx", "voice"), default="pth", help="what to write")
    p.add_argument(
        "--voice",
        help="--format voice: which voice of the folder (default: the one it learned, its default_voice)",
    )
    p.add_argument("--adapted", "--adapter", help="folder written by 'tts-adapt adapt'")
    p.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help="ONNX export of a named base model (default: as synth's --model)",
    )
    p.add_argument("--checkpoint", help="the base checkpoint (default: the one recorded in the folder)")
    p.add_argument("--config", help="config of --checkpoint (ONNX export of a base model)")
    p.add_argument(
        "--out", required=True, help="pth: output .pth (its config.yml is written beside it); onnx: a folder"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (onnx format)")
    p.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="merge even into a base checkpoint other than the one the folder was adapted from (experts)",
    )
    p.set_defaults(func=run_export)


def resolve_config(name: str):
    """A bundled config by name (:data:`NAMED_CONFIGS`), or the path given."""
    from ..models.styletts2.config import named_config

    return named_config(name)


def run_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from ..models.styletts2 import build_model, save_official
    from ..utils.io import write_text

    config = resolve_config(args.config)
    torch.manual_seed(args.seed)
    model = build_model(config)
    if args.frames_per_token:
        from ..models.styletts2.model import set_uniform_durations

        set_uniform_durations(model, args.frames_per_token)
    save_official(model, args.out)
    if args.config_out:
        write_text(args.config_out, Path(config).read_text(encoding="utf-8"))
    count = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: random weights (seed {args.seed}), {count / 1e6:.1f} M parameters")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..models.styletts2 import save_official
    from ..train import load_adapted_model
    from ..train.artifacts import VOICES
    from ..utils.io import copy_file, write_text

    if args.format == "onnx":
        return run_export_onnx(args)
    if args.format == "voice":
        return run_export_voice(args)
    if not args.adapted:
        raise ValueError("export --format pth needs --adapted (the folder written by 'tts-adapt adapt')")
    if args.model:
        raise ValueError("--model names a base for --format onnx; --format pth exports an --adapted folder")
    model = load_adapted_model(
        args.adapted, checkpoint=args.checkpoint, modules=None, allow_base_mismatch=args.allow_base_mismatch
    )
    out = save_official(model, args.out)
    config = Path(args.adapted) / "config.yml"
    target = out.with_name("config.yml") if out.name != "config.yml" else out.with_suffix(".yml")
    write_text(target, config.read_text(encoding="utf-8"))
    written = [out, target]
    voices = Path(args.adapted) / VOICES  # a voice-pack model's packs (its config names them beside it)
    if voices.is_file():
        copy_file(voices, out.with_name(VOICES))
        written.append(out.with_name(VOICES))
    print("wrote " + ", ".join(map(str, written)))
    return 0


def run_export_voice(args: argparse.Namespace) -> int:
    """One voice of an adapted folder as a pack file; no model is loaded (the folder's voices file holds
    the learned pack with every row, so it is copied, not recomputed)."""
    from pathlib import Path

    import yaml

    from ..models.styletts2.voice_packs import read_bundle, write_pack
    from ..train.artifacts import VOICES

    if not args.adapted:
        raise ValueError("export --format voice needs --adapted (a folder written by 'tts-adapt adapt')")
    folder = Path(args.adapted)
    voices_file = folder / VOICES
    if not voices_file.is_file():
        raise FileNotFoundError(
            f"{voices_file} not found: only an adapted voice-pack model (Kokoro) has voices to export"
        )
    config = yaml.safe_load((folder / "config.yml").read_text(encoding="utf-8")) or {}
    name = args.voice or config.get("default_voice")
    packs = read_bundle(voices_file)
    if name not in packs:
        raise ValueError(f"{voices_file}: no voice {name!r}; it has {', '.join(packs)}")
    out = write_pack(packs[name], args.out)
    rows, width = packs[name].styles.shape
    print(f"wrote voice {name!r} ({rows} rows x {width}) to {out}")
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    from ..export.onnx import export_onnx
    from ..models.styletts2 import INFERENCE_MODULES, load_official

    if args.adapted:
        from ..train import load_adapted_model

        model = load_adapted_model(
            args.adapted, checkpoint=args.checkpoint, allow_base_mismatch=args.allow_base_mismatch
        )  # adapters merged
    else:
        from ..models.registry import resolve_model

        # a base model: as given, named, or the default model
        checkpoint, config = resolve_model(
            args.model, args.checkpoint, args.config and str(resolve_config(args.config))
        )
        model = load_official(checkpoint, config, modules=INFERENCE_MODULES)
    out = export_onnx(model, args.out, opset=args.opset)
    print(f"wrote ONNX graphs (opset {args.opset}) to {out}")
    return 0
