"""Cost of the Laplace prior penalty on the LibriTTS-size StyleTTS 2 with the paper's LoRA (rank 16).

(c) ``prior.penalty()`` forward+backward with our low-rank evaluation (never forming ΔW) vs the dense
    ``ΔW = B·A`` form (``tr(G ΔW A ΔWᵀ)`` etc.), per method, and the penalty's share of one LoRA
    adaptation step (objective forward+backward + penalty + AdamW update); target <= 2 %.

The curvature tensors are random symmetric positive (semi-)definite matrices of the right shapes: the
cost of the penalty does not depend on their values, and a real estimate of the LibriTTS model would
need a GPU and LibriTTS. Usage:

    python benchmarks/bench_prior.py [--device cuda] [--rank 16] [--repeats 20] [--batch-size 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from bench_curvature import DEFAULT_FILELIST, libritts_model, make_batches, sync  # noqa: I001

from tts_adapt.adapters import apply_lora, lora_layers
from tts_adapt.curvature import Curvature, make_spec
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.priors import LaplacePrior


def random_curvature(model, method: str, seed: int = 0) -> Curvature:
    g = torch.Generator().manual_seed(seed)
    layers, info = {}, {}
    for name, layer in lora_layers(model).items():
        spec = make_spec(name, layer)
        info[name] = spec.info()
        d_in, d_out = spec.d_aug, spec.d_out

        def spd(d: int) -> torch.Tensor:
            x = torch.randn(d + 4, d, generator=g, dtype=torch.float64)
            return x.T @ x / (d + 4)

        if method == "diag":
            layers[name] = {"diag": torch.rand(d_out, d_in, generator=g, dtype=torch.float64)}
        elif method == "kfac":
            layers[name] = {"A": spd(d_in), "G": spd(d_out)}
        elif method == "ekfac":
            a, gg = spd(d_in), spd(d_out)
            layers[name] = {
                "A": a,
                "G": gg,
                "QA": torch.linalg.eigh(a)[1],
                "QG": torch.linalg.eigh(gg)[1],
                "scale": torch.rand(d_out, d_in, generator=g, dtype=torch.float64),
            }
        else:
            layers[name] = {}
    return Curvature(method, layers, info, num_utterances=1)


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--methods", default="l2sp,diag,kfac,ekfac")
    ap.add_argument(
        "--batch-size", type=int, default=4, help="adaptation batch for the step-share measurement"
    )
    ap.add_argument("--crop-frames", type=int, default=300)
    ap.add_argument("--step-repeats", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=None, help="leave out longer utterances (memory)")
    ap.add_argument("--no-step", action="store_true", help="skip the adaptation-step measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = libritts_model(device)
    apply_lora(model, rank=args.rank, alpha=2 * args.rank)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            for p in layer.lora_B.parameters():
                p.copy_(0.01 * torch.randn(p.shape, generator=g).to(p))
    lora_params = [p for p in model.parameters() if p.requires_grad]
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "rank": args.rank,
        "lora_layers": len(lora_layers(model)),
        "lora_parameters": sum(p.numel() for p in lora_params),
        "penalty": {},
    }
    priors = {}
    for method in args.methods.split(","):
        prior = LaplacePrior(model, random_curvature(model, method), strength=1e3, check_weights=False)
        priors[method] = prior

        def low(prior=prior):
            prior.penalty().backward()

        def dense(prior=prior):
            prior.dense_penalty().backward()

        t_low, t_dense = timed(low, device, args.repeats), timed(dense, device, args.repeats)
        for p in lora_params:
            p.grad = None
        result["penalty"][method] = {"low_rank_s": t_low, "dense_s": t_dense, "speedup": t_dense / t_low}

    if not args.no_step:
        loss_fn = get_objective("styletts2", max_len=args.crop_frames)
        batch = make_batches(1, args.batch_size, 6.0, DEFAULT_FILELIST, seed=3, max_tokens=args.max_tokens)[0]
        batch = batch.to(device)
        opt = torch.optim.AdamW(lora_params, lr=1e-4)
        prior = priors.get("kfac") or next(iter(priors.values()))

        def step():
            opt.zero_grad(set_to_none=True)
            torch.manual_seed(0)
            loss = loss_fn(model, batch).mean() + prior.penalty()
            loss.backward()
            opt.step()

        t_step = timed(step, device, args.step_repeats)
        result["step_s"] = t_step
        result["batch_tokens"] = batch.token_lengths.tolist()
        for r in result["penalty"].values():
            r["share_of_step"] = r["low_rank_s"] / t_step
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"LibriTTS-size StyleTTS 2 on {device} ({result['threads']} threads): LoRA rank {args.rank} on "
        f"{result['lora_layers']} layers ({result['lora_parameters']:,} parameters)"
    )
    for method, r in result["penalty"].items():
        share = f"   {100 * r['share_of_step']:.2f} % of a step" if "share_of_step" in r else ""
        print(
            f"{method:6s} penalty fwd+bwd  low-rank {1e3 * r['low_rank_s']:8.2f} ms   dense "
            f"{1e3 * r['dense_s']:8.2f} ms   ({r['speedup']:.1f}x){share}"
        )
    if "step_s" in result:
        print(
            f"LoRA adaptation step (batch {args.batch_size}, objective + kfac penalty + AdamW): "
            f"{result['step_s']:.3f} s"
        )


if __name__ == "__main__":
    main()
