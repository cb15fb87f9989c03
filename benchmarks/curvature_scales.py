"""How far apart the curvature scalings are, per component: the reference implementation's per-call
statistics (``tts-adapt curvature --scaling reference``) against ours, and against the former
conversion of ours (``G · N / F``, F the frames a layer saw over all its calls).

Both scalings are estimated on the same batches of the LibriTTS architecture (random weights, or
``--micro`` for the micro model). For each target layer a random ``ΔW`` is drawn and its penalty
evaluated as the prior does (λ = 1): reference ``ΔW·(G ΔW A)`` (no ½), ours ``½ ΔW·(G ΔW A)``, the
former conversion ``ΔW·(G N/F ΔW A)``. Printed per component: forward calls and gradient calls of its
layers per batch (medians) and the median ratios. A layer called k times per batch gets about k² times
the former conversion's weight; the shared ALBERT layer of PL-BERT is called once per hidden layer.
Not a timing: the numbers depend on the weights, so rerun it on the real checkpoint with ``--checkpoint``.

    python benchmarks/curvature_scales.py [--micro] [--batches 2] [--batch-size 1] [--max-tokens 60]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_curvature import DEFAULT_FILELIST, libritts_model, make_batches  # noqa: I001

from tts_adapt.curvature import estimate
from tts_adapt.curvature.objectives import get_objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--micro", action="store_true", help="the micro model instead of the LibriTTS size")
    ap.add_argument("--checkpoint", help="an official checkpoint (with --config) instead of random weights")
    ap.add_argument("--config")
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1, help="the reference estimated at batch size 1")
    ap.add_argument("--max-tokens", type=int, default=60)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--objective", default="finetune", help="curvature objective (full needs WavLM)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    if args.checkpoint:
        from tts_adapt.models.styletts2 import load_official

        model = load_official(args.checkpoint, args.config).eval()
    elif args.micro:
        from tts_adapt.models.styletts2 import build_model
        from tts_adapt.models.styletts2.config import MICRO_CONFIG

        torch.manual_seed(0)
        model = build_model(MICRO_CONFIG).eval()
    else:
        model = libritts_model(device)
    model.text_aligner.token_mask_prob = 0.0
    batches = make_batches(args.batches, args.batch_size, 4.0, DEFAULT_FILELIST, max_tokens=args.max_tokens)
    curv = {}
    for scaling in ("ours", "reference"):
        loss = get_objective(args.objective, max_len=args.max_len, reconstruction=scaling == "reference")
        curv[scaling] = estimate(model, batches, loss, "kfac", progress=False, scaling=scaling)
    ours, ref = curv["ours"], curv["reference"]
    g = torch.Generator().manual_seed(0)
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for name in ref.targets:
        info = ref.info[name]
        delta = torch.randn(info["d_out"], info["d_in"], generator=g, dtype=torch.float64)
        q_ours = float(ours.quadratic(name, delta))
        if q_ours <= 0:
            continue  # no gradient reached the layer
        q_ref = float(ref.quadratic(name, delta))
        q_former = q_ours * ours.num_utterances / float(ours.info[name]["frames"])
        calls = info["calls"] / info["batches"]
        grad_calls = info["grad_calls"] / info["batches"]
        ratios = (calls, grad_calls, q_ref / (0.5 * q_ours), q_ref / q_former)
        rows.setdefault(name.split(".")[0], []).append(ratios)
    print(f"{'component':<18}{'layers':>7}{'calls':>7}{'grads':>7}{'ref/ours':>12}{'ref/former':>12}")
    for comp, values in sorted(rows.items()):
        med = [statistics.median(v[i] for v in values) for i in range(4)]
        print(f"{comp:<18}{len(values):>7}{med[0]:>7.1f}{med[1]:>7.1f}{med[2]:>12.3g}{med[3]:>12.3g}")


if __name__ == "__main__":
    main()
