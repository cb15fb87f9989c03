"""Adaptation-step throughput (utterances/s) with a per-component profile, against a baseline tree.

Modes (each timed configuration runs in its own process, so peak memory is its own):

* default: LoRA and LoRA + Laplace prior (``--methods lora,kfac,ekfac,diag``) on the same synthetic
  batches; each method's curvature is first estimated on a few utterances with the training objective.
* ``--baseline PATH``: also time the same LoRA step with the ``tts_adapt`` package found under PATH (a
  checkout of an older commit, e.g. ``git worktree add /tmp/base 64d4419``), in the same run, and
  print the throughput ratio.

    python benchmarks/bench_adapt_step.py --config micro --batch-size 8 --max-len 120 --threads 2 \\
        --methods lora --baseline /tmp/base --profile

* ``--official PATH``: also time the official fine-tuning step (``official_finetune_step.py``: the
  official repository at PATH, imported) on the same batches and weights, beside ours with ``--methods
  full`` (the official fine-tuning trains every module) and LoRA, and print the ratios to it:

    python benchmarks/bench_adapt_step.py --config libritts --batch-size 2 --max-len 100 --threads 2 \\
        --methods full,lora --official ../StyleTTS2 --profile

* ``--config kokoro``: Kokoro-82M's real weights (``tts-adapt[kokoro]``) on the utterances of a real
  corpus (``--data``, say a ``make-corpus --engine piper`` folder; the learned voice starts from am_michael,
  F0 from YIN, alignments from the model's recogniser, as ``adapt --model kokoro`` runs); the prior
  methods take a curvature file made by ``tts-adapt curvature --model kokoro`` (``--curvature-file``):

    python benchmarks/bench_adapt_step.py --config kokoro --data exp/quick/joe --threads 2 \\
        --methods full,lora,kfac --curvature-file exp/quick/curvature/kfac.safetensors

* ``--procs 1,2``: also time data parallelism on the CPU: the same global batch split across N
  processes (gloo), each with ``--threads / N`` threads, gradients summed as ``torchrun`` runs do. On a
  few cores, small convolutions parallelise better across processes than across threads.

The profile is the forward wall time of each top-level module of the model (hooks), plus the rest
(backward, optimiser, losses); it is printed per step. ``--ops N`` profiles N more steps of every run
(the baseline and the official step too) with ``torch.profiler`` and prints self CPU seconds per step by
operator kind: convolution forward and backward, LSTMs, matrix products, FFTs, and everything else
(element-wise operations, copies, reductions), with the part of the last that ran over tensors of a
million elements or more (waveforms, spectrograms and their feature maps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

PRIORS = ("kfac", "ekfac", "diag")


def prepare(work: Path, utterances: int, seed: int = 0, data: str | None = None):
    from tts_adapt.data import FeatureCache, load_corpus, prepare_corpus

    if data:  # a real corpus: its first utterances, features cached beside the run
        utts = sorted(load_corpus(data), key=lambda u: u.id)[:utterances]
        return prepare_corpus(utts, cache=FeatureCache(work / "features"), progress=False).items
    from tts_adapt.data.synthetic import make_corpus

    corpus = make_corpus(work / "corpus", speakers=1, utterances=utterances, seed=seed, progress=False)
    utts = list(load_corpus(corpus))
    return prepare_corpus(utts, cache=FeatureCache(work / "features"), progress=False).items


def build(config: str, device: str):
    from tts_adapt.cli.model import resolve_config
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)
    if config == "kokoro":  # the real weights: the step's cost depends on nothing else, but LoRA's init
        from tts_adapt.models.registry import model_paths
        from tts_adapt.models.styletts2 import load_official

        return load_official(*model_paths("kokoro")).to(device)
    return build_model(resolve_config(config)).to(device)


def estimate_curvature(method: str, args, items, out: Path) -> None:
    from tts_adapt.curvature import estimate
    from tts_adapt.data import TTSDataset, collate

    try:
        from tts_adapt.objective import FineTuneObjective
    except ImportError:  # an older tree
        from tts_adapt.train import FineTuneObjective

    model = build(args.config, args.device).eval()
    objective = FineTuneObjective(model, max_len=args.max_len, estimate_sigma_data=False)
    ds = TTSDataset(items, seed=0)
    batches = [collate([ds[i]]) for i in range(min(2, len(ds)))]
    curv = estimate(
        model, batches, lambda m, b: objective.per_utterance_loss(b.to(args.device)), method, progress=False
    )
    curv.save(out)


class ComponentTimer:
    """Forward wall time of each top-level module (outermost call only, so nested calls count once)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._open: dict[str, list[float]] = defaultdict(list)
        self._handles = []
        for name, module in model.named_children():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str):
        def hook(module, inputs):
            self._open[name].append(time.perf_counter())

        return hook

    def _post(self, name: str):
        def hook(module, inputs, output):
            t0 = self._open[name].pop()
            if not self._open[name]:
                self.seconds[name] += time.perf_counter() - t0

        return hook

    def reset(self) -> None:
        self.seconds.clear()


# Operator kinds of the --ops table beside the convolutions (aten names, self time), first match wins.
OP_KINDS = (
    ("recurrent (LSTM)", ("rnn", "lstm")),
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "attention")),
    ("FFT", ("fft",)),
)
CONV_KINDS = ("convolution backward", "convolution forward")
OTHER = "element-wise, copies, reductions, other"
# Tensors this large are waveforms, spectrograms and their feature maps, not text-side or loss tensors.
LARGE = 1_000_000
OF_WHICH_LARGE = f"  of which on tensors >= {LARGE:,} elements"


def op_kind(name: str) -> str:
    """The --ops kind of an aten operator; convolutions by ``"conv"`` in the name, as
    ``compare_official.py`` counts them, split by ``"backward"``."""
    if "conv" in name:
        return CONV_KINDS[0] if "backward" in name else CONV_KINDS[1]
    for kind, needles in OP_KINDS:
        if any(n in name for n in needles):
            return kind
    return OTHER


def op_seconds(step, steps: int) -> dict[str, float]:
    """Self CPU seconds per step of each operator kind over ``steps`` profiled steps, with their wall time
    (the profiler's own overhead included, so the kinds are shares rather than absolute times), and how
    much of the element-wise kind ran over waveform- or spectrogram-sized tensors."""
    from torch.profiler import ProfilerActivity, profile

    seconds: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    wall = time.perf_counter() - t0
    for event in prof.key_averages(group_by_input_shape=True):
        if not event.key.startswith("aten::"):
            continue
        kind, t = op_kind(event.key), event.self_cpu_time_total / 1e6 / steps
        seconds[kind] += t
        sizes = [math.prod(s) for s in event.input_shapes if isinstance(s, list) and s]
        if kind == OTHER and max(sizes, default=0) >= LARGE:
            seconds[OF_WHICH_LARGE] += t
    return {**dict(seconds), "profiled wall": wall / steps}


def newer_options(config_class, **options) -> dict:
    """The options an (older, baseline) ``TrainConfig`` knows; a baseline without them runs its default."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in options.items() if k in known}


def time_method(method: str, args, items, curvature: Path | None) -> dict:
    from tts_adapt.train import TrainConfig
    from tts_adapt.train.trainer import Trainer

    dist = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from tts_adapt.train.distributed import init_from_env

        dist = init_from_env("gloo")
    model = build(args.config, args.device)
    official = None
    if method == "official":
        from official_finetune_step import official_step_runner

        official = official_step_runner(args.official, model, args.max_len, args.device)
    trained = "full" if method in ("full", "official") else "lora"
    cfg = TrainConfig(
        method="lora+prior" if curvature else trained,
        curvature=str(curvature) if curvature else None,
        strength=1e3,
        steps=args.steps + 1,
        batch_size=args.batch_size,
        batching="length",  # the batches the quoted step times were measured on (both sides get the same)
        max_len=args.max_len,
        save_every=10**6,
        sample_every=10**6,
        log_every=10**6,
        dropout=False,
        device=args.device,
        **({"voice_init": "am_michael"} if args.config == "kokoro" else {}),
        **newer_options(
            TrainConfig, f0=args.f0, no_slm=True, amp=args.amp
        ),  # no WavLM offline; not part of this step
    )
    timer = ComponentTimer(model) if args.profile and official is None else None
    with tempfile.TemporaryDirectory() as tmp:
        # a baseline tree's Trainer may predate ``dist``: pass it only to a process group
        extra = {"dist": dist} if dist else {}
        if args.config == "kokoro":  # the model's own loss weights (no discriminators: lambda_gen 0)
            from tts_adapt.objective.finetune import LossWeights

            extra["weights"] = LossWeights.from_config(model.config.get("loss_params"))
        trainer = Trainer(model, cfg, items, tmp, progress=False, **extra)
        source = trainer.batches()  # the official step draws the same batches
        if official is not None:
            random.seed(0)
            np.random.seed(0)

        def run(batch: list) -> None:
            if official is not None:
                official(batch[0])
            else:
                trainer.train_step(batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            trainer.step += 1

        times, cpu, sizes = [], [], []
        for i in range(args.steps + 1):
            batch = [next(source)]
            if timer is not None:
                timer.reset()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            run(batch)
            if i:  # the first step warms up kernels and caches
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                sizes.append(len(batch[0]))
        ops = op_seconds(lambda: run([next(source)]), args.ops) if args.ops else None
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
        # VmHWM, not ru_maxrss: a worker started by fork + exec inherits its parent's ru_maxrss on Linux
        hwm = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
        peak = int(hwm.split()[1]) / 1024  # kB -> MiB
    step = float(np.median(times))
    return {
        "method": method,
        "step_seconds": step,
        "utt_per_s": float(np.sum(sizes) / np.sum(times)),
        # CPU seconds per utterance (all threads): robust to other load on a shared machine
        "cpu_s_per_utt": float(np.sum(cpu) / np.sum(sizes)),
        "prior_seconds": prior_seconds,
        "peak_mib": peak,
        "lora_params": trainer.setup.counts.get("lora", 0),
        "profile": dict(timer.seconds) if timer is not None else None,  # of the last step
        "last_step": times[-1],
        "ops": ops,
    }


def worker_command(args, worker: str, work: Path) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--worker",
        worker,
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
        "--batch-size",
        str(args.batch_size),
        "--utterances",
        str(args.utterances),
        "--f0",
        args.f0,
        *(["--data", args.data] if args.data else []),
        "--amp",
        args.amp,
        *(["--profile"] if args.profile else []),
        *(["--ops", str(args.ops)] if args.ops else []),
        *(["--official", args.official] if args.official else []),
    ]


def run_worker(args, worker: str, work: Path, tree: str | None = None, procs: int = 1) -> dict:
    """One timed configuration in its own process(es); with ``procs`` > 1 a gloo group of that many, each
    with ``threads / procs`` threads, sharing every global batch: rank 0's step times, the group's CPU
    seconds per utterance and peak memory (summed over ranks)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(tree).resolve()), env.get("PYTHONPATH", "")])
    if procs == 1:
        proc = subprocess.run(worker_command(args, worker, work), capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(f"worker {worker} ({tree or 'this tree'}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    share = argparse.Namespace(**{**vars(args), "threads": max(1, args.threads // procs)})
    group = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29500 + os.getpid() % 1000),
        "WORLD_SIZE": str(procs),
    }
    running = [
        subprocess.Popen(
            worker_command(share, worker, work),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, **group, "RANK": str(rank), "LOCAL_RANK": str(rank)},
        )
        for rank in range(procs)
    ]
    outputs = [p.communicate() for p in running]
    for rank, (p, (_, err)) in enumerate(zip(running, outputs)):
        if p.returncode:
            raise RuntimeError(f"worker {worker} rank {rank} of {procs} failed:\n{err[-3000:]}")
    ranks = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # CPU time and memory are the group's: every rank's share of the same global utterances, summed
    return {
        **ranks[0],
        "cpu_s_per_utt": sum(r["cpu_s_per_utt"] for r in ranks),
        "peak_mib": sum(r["peak_mib"] for r in ranks),
    }


def print_profile(rows: list[dict]) -> None:
    names = sorted({k for r in rows if r.get("profile") for k in r["profile"]})
    if not names:
        return
    print("\nforward seconds per component (last timed step); rest = backward, optimiser, losses")
    print(f"{'component':18s}" + "".join(f"{r['label']:>14s}" for r in rows))
    for n in sorted(names, key=lambda n: -max((r.get("profile") or {}).get(n, 0) for r in rows)):
        print(f"{n:18s}" + "".join(f"{(r.get('profile') or {}).get(n, 0.0):14.3f}" for r in rows))
    print(
        f"{'rest':18s}"
        + "".join(f"{r['last_step'] - sum((r.get('profile') or {}).values()):14.3f}" for r in rows)
    )


def print_ops(rows: list[dict]) -> None:
    rows = [r for r in rows if r.get("ops")]
    if not rows:
        return
    print("\nself CPU seconds per step by operator kind (torch.profiler, profiled steps)")
    print(f"{'kind':40s}" + "".join(f"{r['label']:>14s}" for r in rows))
    kinds = [*CONV_KINDS, *(k for k, _ in OP_KINDS), OTHER, OF_WHICH_LARGE, "profiled wall"]
    for kind in kinds:
        print(f"{kind:40s}" + "".join(f"{r['ops'].get(kind, 0.0):14.3f}" for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="libritts")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--utterances", type=int, default=8, help="synthetic utterances (one speaker)")
    ap.add_argument("--methods", default="lora,kfac,ekfac,diag")
    ap.add_argument("--data", help="a corpus folder to take the utterances from (needed for --config kokoro)")
    ap.add_argument(
        "--curvature-file", help="the prior methods' curvature (needed for them with --config kokoro)"
    )
    ap.add_argument("--baseline", help="a tree whose tts_adapt to time beside this one (LoRA)")
    ap.add_argument("--profile", action="store_true", help="per-component forward times")
    ap.add_argument(
        "--ops",
        type=int,
        default=0,
        metavar="STEPS",
        help="also profile this many extra steps and print self CPU time by operator kind",
    )
    ap.add_argument("--official", help="the official StyleTTS 2 repository: time its fine-tuning step too")
    ap.add_argument(
        "--f0",
        choices=("jdc", "yin", "pyin"),
        help="F0 targets of the step (default: jdc; yin for kokoro, which ships no pitch extractor)",
    )
    ap.add_argument(
        "--amp",
        default="none",
        help="mixed precision of our steps, comma-separated to time several: none, bf16, fp16",
    )
    ap.add_argument(
        "--procs",
        default="1",
        help="data-parallel CPU processes sharing each batch and --threads, comma-separated to time several",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.f0 = args.f0 or ("yin" if args.config == "kokoro" else "jdc")
    if args.config == "kokoro" and not args.data:
        ap.error(
            "--config kokoro needs --data: a corpus of real speech (Kokoro's vocabulary has no synthetic one)"
        )

    if args.worker:  # child process: one configuration
        work = Path(args.work)
        items = prepare(work, args.utterances, data=args.data)
        curv = work / f"{args.worker}.safetensors" if args.worker in PRIORS else None
        print(json.dumps(time_method(args.worker, args, items, curv)))
        return

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    procs_list = [p.strip() for p in args.procs.split(",") if p.strip()]
    if not procs_list or not all(p.isdigit() and int(p) >= 1 for p in procs_list):
        ap.error(f"--procs: expected whole numbers >= 1, comma-separated, got {args.procs!r}")
    if args.ops < 0:
        ap.error(f"--ops: expected a number of steps >= 0, got {args.ops}")
    amps = [a.strip() for a in args.amp.split(",") if a.strip()]
    if unknown := sorted(set(amps) - {"none", "bf16", "fp16"}):
        ap.error(f"--amp: unknown precision {unknown}; expected none, bf16 or fp16")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = prepare(work, args.utterances, data=args.data)
        for m in methods:
            if m in PRIORS and args.curvature_file:
                shutil.copyfile(args.curvature_file, work / f"{m}.safetensors")
            elif m in PRIORS and args.config == "kokoro":
                ap.error(f"--methods {m} with --config kokoro needs --curvature-file (tts-adapt curvature)")
            elif m in PRIORS:
                t0 = time.perf_counter()
                estimate_curvature(m, args, items, work / f"{m}.safetensors")
                print(f"curvature {m}: {time.perf_counter() - t0:.1f} s on 2 utterances", flush=True)
        rows = []
        if args.baseline:
            # the baseline tree runs as it was: JDC F0 targets (older trees know no other tracker but pyin)
            as_it_was = argparse.Namespace(**{**vars(args), "f0": "jdc", "amp": "none"})
            rows.append({**run_worker(as_it_was, "lora", work, args.baseline), "label": "lora@baseline"})
            print(json.dumps(rows[-1]), flush=True)
        if args.official:
            rows.append({**run_worker(args, "official", work), "label": "official"})
            print(json.dumps(rows[-1]), flush=True)
        for m in methods:
            for amp in amps:
                for procs in map(int, procs_list):
                    run = argparse.Namespace(**{**vars(args), "amp": amp})
                    label = (m if amp == "none" else f"{m}+{amp}") + (f" x{procs}" if procs > 1 else "")
                    rows.append({**run_worker(run, m, work, procs=procs), "label": label})
                    print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["label"] == "lora"), None)
    official = next((r for r in rows if r["label"] == "official"), None)
    print(
        f"\n{args.config} model, {args.device}, {args.threads} threads, batch {args.batch_size}, "
        f"max_len {args.max_len}, median of {args.steps} steps"
    )
    print(
        f"{'run':14s} {'s/step':>8s} {'utt/s':>7s} {'vs lora':>8s} {'cpu s/utt':>10s} {'prior fwd+bwd':>14s} "
        f"{'peak MiB':>9s}" + (f" {'time ÷ official':>16s}" if official else "")
    )
    for r in rows:
        ratio = r["utt_per_s"] / base["utt_per_s"] if base else float("nan")
        vs_official = f" {r['step_seconds'] / official['step_seconds']:16.3f}" if official else ""
        prior = r.get("prior_seconds")
        prior_s = f"{1000 * prior:.1f} ms" if prior else "-"
        print(
            f"{r['label']:14s} {r['step_seconds']:8.2f} {r['utt_per_s']:7.2f} {ratio:8.3f} "
            f"{r.get('cpu_s_per_utt', float('nan')):10.2f} {prior_s:>14s} "
            f"{r['peak_mib']:9.0f}{vs_official}"
        )
    print_profile(rows)
    print_ops(rows)


if __name__ == "__main__":
    main()
