"""Time per adaptation step: LoRA vs LoRA + Laplace prior (KFAC, EKFAC, diagonal/EWC), and peak memory.

Each method runs in its own process (so peak memory is its own) on the same synthetic batches: build
the model (random weights, LibriTTS size by default), estimate its curvature on a few utterances with
the real fine-tuning objective, then time ``--steps`` adaptation steps after one warm-up step.

    python benchmarks/bench_adapt_step.py [--config libritts|micro] [--steps 3] [--threads 2]
        [--device cpu|cuda] [--max-len 100] [--methods lora,kfac,ekfac,diag]

The ratio column is each method's median step time over plain LoRA's, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PRIORS = ("kfac", "ekfac", "diag")


def prepare(work: Path, seed: int = 0):
    from tts_adapt.data import FeatureCache, load_corpus, prepare_corpus
    from tts_adapt.data.synthetic import make_corpus

    corpus = make_corpus(work / "corpus", speakers=2, utterances=4, seed=seed, progress=False)
    utts = [u for u in load_corpus(corpus) if u.speaker == "9000"]
    return prepare_corpus(utts, cache=FeatureCache(work / "features"), progress=False).items


def build(config: str, device: str):
    from tts_adapt.cli.model import resolve_config
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)
    return build_model(resolve_config(config)).to(device)


def estimate_curvature(method: str, args, items, out: Path) -> None:
    from tts_adapt.curvature import estimate
    from tts_adapt.data import TTSDataset, collate
    from tts_adapt.train import FineTuneObjective

    model = build(args.config, args.device).eval()
    model.text_aligner.token_mask_prob = 0.0
    objective = FineTuneObjective(model, max_len=args.max_len, estimate_sigma_data=False)
    ds = TTSDataset(items, seed=0)
    batches = [collate([ds[i]]) for i in range(min(2, len(ds)))]
    curv = estimate(
        model, batches, lambda m, b: objective.per_utterance_loss(b.to(args.device)), method, progress=False
    )
    curv.save(out)


def time_method(method: str, args, items, curvature: Path | None) -> dict:
    from tts_adapt.train import TrainConfig
    from tts_adapt.train.trainer import Trainer

    model = build(args.config, args.device)
    cfg = TrainConfig(
        method="lora+prior" if curvature else "lora",
        curvature=str(curvature) if curvature else None,
        strength=1e3,
        steps=args.steps + 1,
        batch_size=2,
        max_len=args.max_len,
        save_every=10**6,
        sample_every=10**6,
        log_every=10**6,
        dropout=False,
        device=args.device,
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, cfg, items, tmp, progress=False)
        source = trainer.batches()
        times = []
        for i in range(args.steps + 1):
            batch = [next(source)]
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            trainer.train_step(batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            trainer.step += 1
            if i:  # the first step warms up kernels and caches
                times.append(time.perf_counter() - t0)
        prior_seconds = None
        if trainer.setup.prior is not None:
            prior = trainer.setup.prior
            t0 = time.perf_counter()
            for _ in range(20):
                prior.penalty().backward()
            prior_seconds = (time.perf_counter() - t0) / 20
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {
        "method": method,
        "step_seconds": float(np.median(times)),
        "prior_seconds": prior_seconds,
        "peak_mib": peak,
        "lora_params": trainer.setup.counts["lora"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="libritts")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--methods", default="lora,kfac,ekfac,diag")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.worker:  # child process: one method
        work = Path(args.work)
        items = prepare(work)
        curv = work / f"{args.worker}.safetensors" if args.worker in PRIORS else None
        print(json.dumps(time_method(args.worker, args, items, curv)))
        return

    methods = [m.strip() for m in args.methods.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = prepare(work)
        for m in methods:
            if m in PRIORS:
                t0 = time.perf_counter()
                estimate_curvature(m, args, items, work / f"{m}.safetensors")
                print(
                    f"curvature {m}: {time.perf_counter() - t0:.1f} s on {min(2, len(items))} utterances",
                    flush=True,
                )
        rows = []
        for m in methods:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                m,
                "--work",
                str(work),
                "--config",
                args.config,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
                "--device",
                args.device,
                "--max-len",
                str(args.max_len),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    base = next((r["step_seconds"] for r in rows if r["method"] == "lora"), None)
    print(
        f"\n{args.config} model, {args.device}, {args.threads} threads, batch 2, crop {args.max_len} frames, "
        f"median of {args.steps} steps"
    )
    print(f"{'method':8s} {'s/step':>8s} {'ratio':>7s} {'prior fwd+bwd':>14s} {'share':>7s} {'peak MiB':>9s}")
    for r in rows:
        ratio = r["step_seconds"] / base if base else float("nan")
        prior = r["prior_seconds"]
        share = f"{100 * prior / r['step_seconds']:.2f}%" if prior else "-"
        prior_s = f"{1000 * prior:.1f} ms" if prior else "-"
        print(
            f"{r['method']:8s} {r['step_seconds']:8.2f} {ratio:7.3f} {prior_s:>14s} {share:>7s} "
            f"{r['peak_mib']:9.0f}"
        )


if __name__ == "__main__":
    main()
