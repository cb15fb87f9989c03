"""Pitch following: does the decoder speak at the F0 it is given?

StyleTTS 2's decoder receives an F0 curve and turns it into a harmonic source; a voice's pitch reaches
the audio only through it. This diagnostic synthesises a text from a reference (deterministic source),
keeps the decoder's inputs, decodes them again with the F0 curve scaled by each factor, and measures the
pitch of every output with pYIN. A decoder that follows its F0 gives output pitches proportional to the
factor (slope 1 of log output pitch against log factor); one that ignores it gives the same pitch for
every factor (slope 0), whatever the prosody predictor says.

It also reports the prosody's side: across the references, the slope of the log F0 the predictor gives
on the log pitch of each reference recording (``level_slope``). The prosodic style carries a voice's
pitch level, so 1 keeps every voice's level; below 1 the predictor pulls voices towards the middle.

    python -m tts_adapt.evaluation.pitch_following                  # the shipped model and voices
    python -m tts_adapt.evaluation.pitch_following --checkpoint CKPT --config CONFIG --reference a.wav
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.help import HelpFormatter

SCALES = (0.5, 1.0, 2.0)
TEXT = "The quick brown fox jumps over the lazy dog, and then it runs away."
FMIN, FMAX = 40.0, 600.0  # low enough for a 74 Hz voice at F0 x 0.5

# decode(asr, F0, N, ref) -> waveform; the model's decoder by default
Decode = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def median_pitch(wave: np.ndarray, sample_rate: int = 24000) -> float:
    """Median pYIN F0 (Hz) over the voiced frames; NaN where nothing is voiced."""
    from ..objective.pitch import track_f0

    f0 = track_f0(wave, sample_rate, "pyin", FMIN, FMAX)  # the pre-training targets' tracker, 0 = unvoiced
    f0 = f0[f0 > 0]
    return float(np.median(f0)) if len(f0) else math.nan


def slope(scales: Sequence[float], pitches: Sequence[float]) -> float:
    """Least-squares slope of log2(output pitch) on log2(F0 factor): 1 follows, 0 ignores."""
    pairs = [(math.log2(s), math.log2(p)) for s, p in zip(scales, pitches) if p > 0 and math.isfinite(p)]
    if len(pairs) < 2:
        return math.nan
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def level_slope(reference_pitches: Sequence[float], given_pitches: Sequence[float]) -> float:
    """Across voices: slope of log2(F0 the predictor gives) on log2(reference recording's pitch).

    1 keeps every voice's pitch level; 0.5 halves each voice's distance (in octaves) from the middle.
    """
    return slope(reference_pitches, given_pitches)


def decoder_inputs(
    model, reference, text: str = "", phonemes: str | None = None, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """``(asr, F0, N, ref)`` that synthesis hands the decoder for this text and reference."""
    from ..models.styletts2.inference import infer_tokens, style_from_reference, text_to_ids

    captured: dict = {}
    handle = model.decoder.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(args=args), with_kwargs=True
    )
    try:
        ref_s = style_from_reference(model, reference)
        ids = text_to_ids(text, phonemes, model.bert.config.max_position_embeddings)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            infer_tokens(model, torch.tensor([ids]), ref_s, 0.3, 0.7, 5, 1.0, deterministic=True)
    finally:
        handle.remove()
    return captured["args"]


def pitch_level(model, reference, text: str = TEXT) -> tuple[float, float]:
    """``(reference recording's median pitch, median F0 the predictor gives)`` for one reference."""
    from ..audio import load_audio

    f0 = decoder_inputs(model, reference, text)[1]
    voiced = f0[f0 > FMIN]
    given = float(voiced.median()) if len(voiced) else math.nan
    return median_pitch(load_audio(reference, model.sample_rate), model.sample_rate), given


def follow(
    inputs: tuple[torch.Tensor, ...],
    decode: Decode,
    scales: Sequence[float] = SCALES,
    sample_rate: int = 24000,
) -> dict:
    """Output pitch for each F0 factor, the given F0's median and the slope."""
    asr, f0, n, ref = inputs
    voiced = f0[f0 > FMIN]
    pitches = []
    with torch.no_grad():
        for k in scales:
            wave = decode(asr, f0 * k, n, ref).reshape(-1).float().cpu().numpy()
            pitches.append(median_pitch(wave, sample_rate))
    return {
        "f0_median": float(voiced.median()) if len(voiced) else math.nan,
        "scales": list(scales),
        "output_pitch": pitches,
        "slope": slope(scales, pitches),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from ..audio import load_audio
    from ..models.styletts2 import INFERENCE_MODULES, load_official
    from ..models.styletts2.default import resolve_model_paths
    from ..models.styletts2.shipped_voices import shipped_voices

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", help="model file (default: the shipped base model)")
    p.add_argument("--config", help="its config.yml (default: the shipped base model's)")
    p.add_argument(
        "--reference", action="append", help="reference recording (repeatable; default: the shipped voices)"
    )
    p.add_argument("--text", default=TEXT, help="text to speak")
    p.add_argument("--scales", default=",".join(str(s) for s in SCALES), help="F0 factors, comma-separated")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", help="write the result as JSON here too")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint, config = resolve_model_paths(args.checkpoint, args.config)
    model = load_official(checkpoint, config, modules=INFERENCE_MODULES).eval()
    references = args.reference or [str(v.path) for v in shipped_voices().values()]
    if not references:
        p.error("no --reference given and this installation ships no voices")
    scales = [float(s) for s in args.scales.split(",")]

    def decode(asr, f0, n, ref):
        return model.decoder(asr, f0, n, ref, deterministic=True)

    rows = {}
    for ref in references:
        result = follow(decoder_inputs(model, ref, args.text), decode, scales, model.sample_rate)
        result["reference_pitch"] = median_pitch(load_audio(ref, model.sample_rate), model.sample_rate)
        rows[Path(ref).stem] = result
        pitches = " / ".join(f"{x:.0f}" for x in result["output_pitch"])
        print(
            f"{Path(ref).stem}: reference {result['reference_pitch']:.0f} Hz, F0 given "
            f"{result['f0_median']:.0f} Hz; output pitch at F0 x "
            f"{' / '.join(f'{s:g}' for s in scales)}: {pitches} Hz; slope {result['slope']:.2f}"
        )
    slopes = [r["slope"] for r in rows.values() if math.isfinite(r["slope"])]
    summary = {
        "checkpoint": str(checkpoint),
        "voices": rows,
        "mean_slope": float(np.mean(slopes)) if slopes else None,
        "level_slope": level_slope(
            [r["reference_pitch"] for r in rows.values()], [r["f0_median"] for r in rows.values()]
        ),
    }
    print(f"mean slope {summary['mean_slope']:.2f} (1: the decoder follows its F0; 0: it ignores it)")
    if len(rows) > 1:
        print(
            f"pitch level across voices: slope {summary['level_slope']:.2f} of the F0 given on the "
            "reference's pitch (1: every voice keeps its level; below 1: pulled towards the middle)"
        )
    if args.out:
        from ..utils.io import atomic_path

        with atomic_path(Path(args.out), suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
