"""``tts-adapt synth``: text -> wav with a base model (Kokoro-82M by default) or an adapted one."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..models.registry import add_model_arguments

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="speak a text in a voice of the model, or of a reference recording",
        description="Speak a text with the base model (Kokoro-82M by default: --voice NAME, a blend "
        "af_heart:0.6,bf_emma:0.4 or a voice-pack file) or with an adapted one (--adapter). A StyleTTS 2 "
        "with style encoders speaks in the voice of a reference recording (--reference). Long texts are "
        "spoken sentence by sentence. The same seed gives the same audio.",
    )
    add_model_arguments(p)
    p.add_argument("--onnx", help="a folder written by 'tts-adapt export --format onnx' (runs onnxruntime)")
    p.add_argument("--threads", type=int, help="onnxruntime threads, with --onnx (default: all cores)")
    p.add_argument("--adapter", help="an adapted-model folder written by 'tts-adapt adapt' (optional)")
    p.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="load --adapter even on a base checkpoint other than the one it was adapted from (experts)",
    )
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="English text to speak")
    text.add_argument("--phonemes", help="IPA phonemes to speak (skips espeak-ng)")
    voice = p.add_mutually_exclusive_group()
    voice.add_argument("--reference", help="a recording whose voice and style to use (StyleTTS 2 models)")
    voice.add_argument(
        "--voice",
        help="Kokoro: a voice by name (af_heart, am_adam, bf_emma, ...), a blend "
        "(af_heart:0.6,bf_emma:0.4) or a voice-pack file (.pt, .bin, .safetensors); tts-adapt-base: a "
        "shipped reference recording by name ("
        + (", ".join(_voice_names()) or "none in this installation")
        + ") (default: af_heart for Kokoro, the first shipped recording for tts-adapt-base)",
    )
    p.add_argument("--out", required=True, help="output .wav path (its folder is created)")
    p.add_argument(
        "--level",
        type=_level,
        default=-20.0,
        metavar="DBFS",
        help="speech level of the written clip in dBFS (RMS of its active frames; the peak stays below "
        "full scale), or raw for the model's own level (default: -20)",
    )
    p.add_argument("--speed", type=float, default=1.0, help="speaking rate, >1 faster (default: 1.0)")
    p.add_argument(
        "--alpha",
        type=float,
        default=0.3,
        help="StyleTTS 2 with a sampler: share of the timbre taken from the sampled style (default: 0.3)",
    )
    p.add_argument(
        "--beta",
        type=float,
        default=0.7,
        help="StyleTTS 2 with a sampler: share of the prosody taken from the sampled style (default: 0.7)",
    )
    p.add_argument(
        "--diffusion-steps", type=int, default=5, help="style-diffusion sampler steps (default: 5)"
    )
    p.add_argument(
        "--embedding-scale", type=float, default=1.0, help="classifier-free guidance (default: 1.0)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same audio (default: 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.set_defaults(func=run)


def _voice_names() -> list[str]:
    from ..models.styletts2.shipped_voices import shipped_voices

    try:
        return list(shipped_voices())
    except (ValueError, FileNotFoundError):
        return []  # reported when the command runs, not while building --help


def _level(value: str) -> float | None:
    """``--level``: a speech level in dBFS (below 0), or ``raw`` for the model's own level."""
    if value.strip().lower() == "raw":
        return None
    try:
        level = float(value)
    except ValueError:
        message = f"expected a level in dBFS such as -20, or raw; got {value!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not level < 0:
        raise argparse.ArgumentTypeError(f"a level in dBFS is below 0 (full scale); got {value}")
    return level


def run(args: argparse.Namespace) -> int:
    import soundfile as sf
    import torch

    from ..models.registry import resolve_model
    from ..models.styletts2 import INFERENCE_MODULES, load_official
    from ..utils.io import atomic_path

    if args.onnx:
        if args.checkpoint or args.adapter or args.model:
            raise ValueError("--onnx runs an exported folder; drop --model/--checkpoint/--adapter")
        from ..export.onnx_runtime import OnnxSynthesizer

        model = OnnxSynthesizer(args.onnx, threads=args.threads)
    elif args.adapter:
        from ..train import load_adapted_model

        if args.model:
            raise ValueError("--adapter opens the base it was adapted from; drop --model")
        # the adapted folder carries its own resolved config (e.g. the adapted sigma_data)
        model = load_adapted_model(
            args.adapter, checkpoint=args.checkpoint, allow_base_mismatch=args.allow_base_mismatch
        )
    else:
        args.checkpoint, args.config = resolve_model(args.model, args.checkpoint, args.config)
        model = load_official(args.checkpoint, args.config, modules=INFERENCE_MODULES)
    if not args.onnx:
        model = model.to(torch.device(args.device))
    reference = _style_source(model, args.reference, args.voice)
    wave, sr = model.synthesize(
        args.text or "",
        reference=reference,
        phonemes=args.phonemes,
        alpha=args.alpha,
        beta=args.beta,
        diffusion_steps=args.diffusion_steps,
        embedding_scale=args.embedding_scale,
        seed=args.seed,
        speed=args.speed,
    )
    from ..audio_out import finish_for_listening

    wave, finish = finish_for_listening(wave, sr, level_dbfs=args.level)
    log.info(
        "level: speech %.1f dBFS -> %.1f dBFS (gain %+.1f dB%s), %.2f s of silence after it",
        finish.level_before,
        finish.level_after,
        finish.gain_db,
        ", limited by the peak" if finish.peak_limited else "",
        finish.tail_s,
    )
    out = Path(args.out)
    with atomic_path(out, suffix=".wav") as tmp:
        sf.write(str(tmp), wave, sr, format="WAV", subtype="PCM_16")
    print(f"wrote {out} ({len(wave) / sr:.2f} s at {sr} Hz, speech at {finish.level_after:.1f} dBFS)")
    return 0


def _style_source(model, reference: str | None, voice: str | None):
    """What the model speaks with: a voice (pack) for a voice-pack model, else a recording."""
    if getattr(model, "uses_voice_packs", False):
        if reference:
            raise ValueError(
                "this model speaks with voice packs, not reference recordings: use --voice NAME, a blend "
                "such as af_heart:0.6,bf_emma:0.4, or a voice-pack file"
            )
        return voice  # None: the model's default voice
    if reference is None and (voice or model.multispeaker):
        from ..models.styletts2.shipped_voices import resolve_reference

        reference = resolve_reference(None, voice)
        log.info("reference: the shipped voice %s", Path(reference).stem)
    return reference
