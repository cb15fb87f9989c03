"""Cost of a curvature pass on the LibriTTS-size StyleTTS 2 (random weights, real-length batches).

(a) one batch of our pass (the per-batch work of ``estimate``: hooks, one GEMM per factor, float64
    sums; two passes for EKFAC) ÷ one plain training forward+backward of the same objective on the same
    batch (all synthesis modules trainable, as in the official second stage); target <= 1.10. Also
    against a forward+backward where only the target weights are differentiable (the smallest graph
    reaching them), which isolates what the statistics add. The once-per-run cost of ``estimate``
    (targets, fingerprint) is reported separately.
(b) the same on batches of one utterance (the reference's curvature setting), side by side with the
    reference implementation's accumulation re-created: hooks on every target Linear that materialise
    per-frame outer products ``a aᵀ`` and ``g gᵀ`` as ``[B, T, d, d]`` tensors and average them (target
    weights differentiable, as there).

Every step runs once untimed on each batch (new shapes), then the steps alternate ``--repeats`` times.

Real lengths: token counts of the paper's 1000-utterance LibriTTS curvature subset (its IPA strings,
``--filelist``) or, without it, a fixed spread of 40-160 tokens; ``--frames-per-token`` mel frames per
token (6 = 13 symbols per second). Weights are random, so the spectral-norm vectors are first settled by
power iteration (as training would) to keep activations finite. Usage:

    python benchmarks/bench_curvature.py [--device cuda] [--batch-size 4] [--batches 2] [--repeats 2]
        [--method kfac] [--crop-frames 300] [--reference-batches 2] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from tts_adapt.adapters import default_targets, named_layers
from tts_adapt.curvature import estimate, make_spec
from tts_adapt.curvature.accumulate import Accumulator
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.data import Batch
from tts_adapt.models.styletts2 import INFERENCE_MODULES, build_model
from tts_adapt.models.styletts2.config import LIBRITTS_CONFIG

SYNTHESIS = INFERENCE_MODULES
REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILELIST = Path(
    os.environ.get("TTS_ADAPT_PAPER_SPLITS", REPO.parent / "shared" / "data" / "paper_splits")
)


def token_lengths(filelist: Path | None, n: int, seed: int, max_tokens: int | None = None) -> list[int]:
    if filelist is not None and filelist.is_dir():
        filelist = filelist / "libritts_subset_1000.txt"
    if filelist is not None and filelist.is_file():
        lines = [ln.split("|") for ln in filelist.read_text(encoding="utf-8").splitlines() if "|" in ln]
        pool = [len(parts[1]) + 2 for parts in lines]
    else:
        pool = list(range(40, 161, 8))
    if max_tokens is not None:
        pool = [t for t in pool if t <= max_tokens]
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.choice(pool, size=n, replace=len(pool) < n)]


def make_batches(
    n_batches: int,
    batch_size: int,
    frames_per_token: float,
    filelist: Path | None,
    seed: int = 0,
    max_tokens: int | None = None,
) -> list[Batch]:
    lengths = token_lengths(filelist, n_batches * batch_size, seed, max_tokens)
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(n_batches):
        lt = sorted(lengths[b * batch_size : (b + 1) * batch_size], reverse=True)
        lm = [max(96, 2 * round(t * frames_per_token / 2)) for t in lt]
        n, wt, wm = len(lt), max(lt), max(lm)
        tokens = torch.zeros(n, wt, dtype=torch.long)
        mels = torch.zeros(n, 80, wm)
        waves = torch.zeros(n, wm * 300)
        for i, (t, m) in enumerate(zip(lt, lm)):
            tokens[i, 1 : t - 1] = torch.randint(1, 178, (t - 2,), generator=g)
            mels[i, :, :m] = torch.randn(80, m, generator=g) * 1.5 - 4
            waves[i, : m * 300] = 0.1 * torch.randn(m * 300, generator=g)
        ltt, lmt = torch.tensor(lt), torch.tensor(lm)
        out.append(
            Batch(
                ids=[f"b{b}u{i}" for i in range(n)],
                speakers=["s"] * n,
                speaker_ids=torch.zeros(n, dtype=torch.long),
                phonemes=[""] * n,
                texts=[""] * n,
                tokens=tokens,
                token_lengths=ltt,
                text_mask=torch.arange(wt)[None] >= ltt[:, None],
                waves=waves,
                wave_lengths=lmt * 300,
                mels=mels,
                mel_lengths=lmt,
                mel_mask=torch.arange(wm)[None] >= lmt[:, None],
                ref_mels=torch.randn(n, 80, 192, generator=g) * 1.5 - 4,
                ref_mel_lengths=torch.full((n,), 192),
                ref_ids=["r"] * n,
            )
        )
    return out


def libritts_model(device: torch.device, seed: int = 0) -> torch.nn.Module:
    """The LibriTTS architecture with random weights, spectral-norm vectors settled by power iteration."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    torch.manual_seed(seed)
    model = build_model(LIBRITTS_CONFIG).to(device)
    with torch.no_grad():
        for m in model.modules():
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    for _ in range(30):
                        hook.compute_weight(m, do_power_iteration=True)
                    setattr(m, hook.name, hook.compute_weight(m, do_power_iteration=False))
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_backward(model, batch, loss_fn, device) -> float:
    """Seconds for one seeded forward+backward of the summed loss; gradients are dropped afterwards."""
    torch.manual_seed(0)
    sync(device)
    t0 = time.perf_counter()
    loss_fn(model, batch).sum().backward()
    sync(device)
    dt = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return dt


def plain_step(model, batch, loss_fn, device, trainable) -> float:
    """One training forward+backward (``trainable`` modules get weight gradients)."""
    model.requires_grad_(False)
    for name in trainable:
        getattr(model, name).requires_grad_(True)
    return timed_backward(model, batch, loss_fn, device)


def target_grad_step(model, batch, loss_fn, device, targets) -> float:
    """Forward+backward with only the target layers' weights differentiable (the smallest training graph
    that reaches them): what our hooks add is measured against this too."""
    layers = named_layers(model)
    model.requires_grad_(False)
    for name in targets:
        layers[name].weight.requires_grad_(True)
    return timed_backward(model, batch, loss_fn, device)


def our_step(model, batch, loss_fn, acc: Accumulator, device) -> float:
    """One batch of our pass: the work ``estimate`` does per batch (hooks, GEMMs, float64 sums)."""
    model.requires_grad_(False)  # estimate differentiates no parameter
    acc.attach()
    try:
        torch.manual_seed(0)
        sync(device)
        t0 = time.perf_counter()
        losses = loss_fn(model, batch)
        acc.begin_batch(len(losses))
        losses.sum().backward()
        acc.end_batch(len(losses))
        sync(device)
        return time.perf_counter() - t0
    finally:
        acc.detach()


class ReferenceHooks:
    """The reference implementation's accumulation, re-created: per-frame outer products ``a aᵀ`` and
    ``g gᵀ`` materialised as ``[B, T, d, d]`` and averaged, on every target Linear (weights
    differentiable)."""

    def __init__(self, model, targets, device) -> None:
        self.layers = {n: named_layers(model)[n] for n in targets}
        self.stats = {
            n: {
                "A": torch.zeros(m.in_features, m.in_features, device=device),
                "G": torch.zeros(m.out_features, m.out_features, device=device),
            }
            for n, m in self.layers.items()
        }
        self.handles = []

    @staticmethod
    def outer_mean(x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        xx = x.unsqueeze(-1) @ x.unsqueeze(-2)  # [B, (T,) d, d]
        return xx.mean(dim=tuple(range(xx.dim() - 2)))

    def _forward_hook(self, name: str):
        def hook(module, inputs, output) -> None:
            self.stats[name]["A"] += self.outer_mean(inputs[0])

        return hook

    def _backward_hook(self, name: str):
        def hook(module, grad_input, grad_output) -> None:
            self.stats[name]["G"] += self.outer_mean(grad_output[0])

        return hook

    def step(self, model, batch, loss_fn, device) -> float:
        model.requires_grad_(False)
        for name, mod in self.layers.items():
            mod.weight.requires_grad_(True)
            self.handles.append(mod.register_forward_hook(self._forward_hook(name)))
            self.handles.append(mod.register_full_backward_hook(self._backward_hook(name)))
        try:
            torch.manual_seed(0)
            sync(device)
            t0 = time.perf_counter()
            loss_fn(model, batch).sum().backward()
            sync(device)
            return time.perf_counter() - t0
        finally:
            for h in self.handles:
                h.remove()
            self.handles.clear()
            model.zero_grad(set_to_none=True)


def interleaved(steps: dict, batches, repeats: int) -> dict[str, list[float]]:
    """Per batch: one untimed warm-up of every step (new shapes), then ``repeats`` alternating rounds."""
    times = {k: [] for k in steps}
    for batch in batches:
        for fn in steps.values():
            fn(batch)
        per = {k: [] for k in steps}
        for _ in range(repeats):
            for k, fn in steps.items():
                per[k].append(fn(batch))
        for k in steps:
            times[k].append(float(np.median(per[k])))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=4, help="utterances per batch for (a)")
    ap.add_argument("--batches", type=int, default=2, help="batches for (a)")
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds per batch (after one warm-up)")
    ap.add_argument("--method", default="kfac", choices=["diag", "kfac", "ekfac"])
    ap.add_argument("--crop-frames", type=int, default=300)
    ap.add_argument("--frames-per-token", type=float, default=6.0)
    ap.add_argument("--filelist", type=Path, default=DEFAULT_FILELIST)
    ap.add_argument("--max-tokens", type=int, default=None, help="leave out longer utterances (memory)")
    ap.add_argument(
        "--reference-batches",
        type=int,
        default=2,
        help="batches of one utterance (the reference's curvature setting) for (b); 0 skips (b)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = libritts_model(device)
    targets = default_targets(model)
    layers = named_layers(model)
    specs = [make_spec(n, layers[n]) for n in targets]
    loss_fn = get_objective("styletts2", max_len=args.crop_frames)
    stats = ["kfac", "ekfac"] if args.method == "ekfac" else [args.method]
    bases = None
    if args.method == "ekfac":  # eigenbases of random SPD factors: the cost does not depend on them
        bases = {}
        for sp in specs:
            qa = torch.linalg.qr(torch.randn(sp.d_aug, sp.d_aug, dtype=torch.float64))[0]
            qg = torch.linalg.qr(torch.randn(sp.d_out, sp.d_out, dtype=torch.float64))[0]
            bases[sp.name] = {"QA": qa.to(device), "QG": qg.to(device)}
    accs = {st: Accumulator(specs, st, bases if st == "ekfac" else None) for st in stats}

    def run(batch_size: int, n_batches: int, with_reference: bool, seed: int) -> dict:
        batches = [
            b.to(device)
            for b in make_batches(
                n_batches,
                batch_size,
                args.frames_per_token,
                args.filelist,
                seed=seed,
                max_tokens=args.max_tokens,
            )
        ]
        steps = {
            "plain": lambda b: plain_step(model, b, loss_fn, device, SYNTHESIS),
            "plain_targets": lambda b: target_grad_step(model, b, loss_fn, device, targets),
        }
        for st, acc in accs.items():
            steps[f"ours_{st}"] = lambda b, acc=acc: our_step(model, b, loss_fn, acc, device)
        if with_reference:
            ref = ReferenceHooks(model, targets, device)
            steps["reference"] = lambda b: ref.step(model, b, loss_fn, device)
        t = interleaved(steps, batches, args.repeats)
        plain = float(np.mean(t["plain"]))
        ours = sum(float(np.mean(t[f"ours_{st}"])) for st in stats)
        out = {
            "batch_size": batch_size,
            "tokens": [b.token_lengths.tolist() for b in batches],
            "mel_frames": [b.mel_lengths.tolist() for b in batches],
            "seconds": t,
            "ratio_ours_vs_plain": ours / plain,
            "ratio_ours_vs_target_gradients": ours / float(np.mean(t["plain_targets"])),
        }
        if with_reference:
            out["ratio_reference_vs_plain"] = float(np.mean(t["reference"])) / plain
            out["ratio_reference_vs_ours"] = float(np.mean(t["reference"])) / ours
        return out

    def report(part: str, r: dict) -> None:
        if args.json:
            return
        t = r["seconds"]
        line = (
            f"({part}) batches of {r['batch_size']} (tokens {r['tokens']}): plain fwd+bwd "
            f"{np.mean(t['plain']):.3f} s, ours "
            + " + ".join(f"{np.mean(t['ours_' + st]):.3f} s" for st in stats)
            + f" -> ratio {r['ratio_ours_vs_plain']:.3f} (vs target-weight gradients only "
            f"{np.mean(t['plain_targets']):.3f} s: {r['ratio_ours_vs_target_gradients']:.3f})"
        )
        if "reference" in t:
            line += (
                f"; reference outer products {np.mean(t['reference']):.3f} s -> ratio "
                f"{r['ratio_reference_vs_plain']:.3f} ({r['ratio_reference_vs_ours']:.1f}x ours)"
            )
        print(line, flush=True)

    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "targets": len(targets),
        "method": args.method,
        "crop_frames": args.crop_frames,
    }
    if not args.json:
        print(
            f"LibriTTS-size StyleTTS 2 on {result['device_name']} ({result['threads']} threads), "
            f"{len(targets)} target Linear layers, method {args.method}, crop {args.crop_frames} frames",
            flush=True,
        )
    # once per estimate(): target resolution, layer specs, fingerprint
    sync(device)
    t0 = time.perf_counter()
    estimate(model, [], None, "l2sp", targets, progress=False)
    result["setup_s"] = time.perf_counter() - t0
    if args.batches:
        result["a"] = run(args.batch_size, args.batches, False, seed=0)
        report("a", result["a"])
    if args.reference_batches:
        gc.collect()
        result["b"] = run(1, args.reference_batches, True, seed=1)
        report("b", result["b"])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"once per estimate: {result['setup_s']:.2f} s (targets, fingerprint)")


if __name__ == "__main__":
    main()
