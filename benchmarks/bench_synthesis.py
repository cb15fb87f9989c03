"""Synthesis real-time factor of the LibriTTS-size StyleTTS 2 (random weights), split by component.

RTF = seconds of compute / seconds of audio (lower is faster). Random weights give arbitrary durations,
so the duration head is set to predict exactly ``--frames-per-token`` frames of 25 ms (3 ≈ 13 symbols
per second, natural read speech) and the audio length matches real use. Usage:

    python benchmarks/bench_synthesis.py [--device cpu] [--threads 2] [--tokens 120] [--repeats 3]

With ``--official PATH`` (a checkout of the official repository; its modules are imported, nothing is
copied) it times, in one run and on the same weights, text, reference style and seed: the official
inference, ours in PyTorch eager, ours with LoRA adapters unmerged and merged, and onnxruntime
(``--no-onnx`` skips the export), then prints the ratios to the official time, the per-component split
and the largest waveform difference to the official output:

    python benchmarks/bench_synthesis.py --official ../StyleTTS2 --threads 2 --tokens 60 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.config import LIBRITTS_CONFIG
from tts_adapt.models.styletts2.inference import infer_tokens
from tts_adapt.models.styletts2.model import set_uniform_durations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--tokens", type=int, default=120, help="phoneme tokens (~ a 7-8 s sentence)")
    ap.add_argument("--frames-per-token", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--official", help="official StyleTTS 2 repository: compare against it")
    ap.add_argument("--config", default="libritts", help="libritts or micro (with --official: libritts)")
    ap.add_argument("--no-onnx", action="store_true", help="with --official: skip the onnxruntime run")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.official:
        from compare_official import compare

        compare(args)
        return
    device = torch.device(args.device)
    model = build_model(LIBRITTS_CONFIG).eval().to(device)
    set_uniform_durations(model, args.frames_per_token)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 178, (1, args.tokens), generator=g)
    tokens[0, 0] = 0
    ref_mel = torch.randn(1, 80, 200, generator=g).to(device)

    with torch.no_grad():
        infer_tokens(model, tokens[:, :20], model.compute_style(ref_mel))  # warm-up
        runs = []
        for _ in range(args.repeats):
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            ref_s = model.compute_style(ref_mel)
            timings["style_encoders"] = time.perf_counter() - t0
            r = infer_tokens(model, tokens, ref_s, timings=timings)
            timings["total"] = time.perf_counter() - t0
            audio_s = r.wave.numel() / model.sample_rate
            runs.append((timings, audio_s))
    audio_s = runs[0][1]
    names = list(runs[0][0])
    median = {n: float(np.median([t[n] for t, _ in runs])) for n in names}
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "tokens": args.tokens,
        "audio_seconds": round(audio_s, 3),
        "rtf": round(median["total"] / audio_s, 4),
        "seconds": {n: round(v, 4) for n, v in median.items()},
        "share": {n: round(v / median["total"], 3) for n, v in median.items() if n != "total"},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"LibriTTS-size StyleTTS 2, {device}, {result['threads']} threads, {args.tokens} tokens"
        f" -> {audio_s:.2f} s audio"
    )
    print(f"RTF {result['rtf']:.3f}  (total {median['total']:.2f} s, median of {args.repeats})")
    for n in names:
        if n != "total":
            print(f"  {n:18s} {median[n]:7.3f} s  {100 * median[n] / median['total']:5.1f} %")


if __name__ == "__main__":
    main()
