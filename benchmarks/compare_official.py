"""``bench_synthesis.py --official``: the official inference beside ours on the same weights and noise."""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.config import LIBRITTS_CONFIG, MICRO_CONFIG
from tts_adapt.models.styletts2.inference import infer_tokens
from tts_adapt.models.styletts2.model import StyleTTS2, set_uniform_durations

STAGES = ("text_encoder", "bert", "diffusion_sampler", "predictor", "decoder")


def _copy(model: StyleTTS2) -> StyleTTS2:
    other = StyleTTS2(model.config)
    other.load_state_dict(model.state_dict())
    return other.eval()


def _time(run: Callable[[dict], torch.Tensor], repeats: int, seed: int) -> tuple[dict, torch.Tensor]:
    """Median seconds per stage and in total over ``repeats`` seeded runs after one untimed warm-up run
    (the first call pays for allocator and kernel set-up), and the last waveform."""
    torch.manual_seed(seed)
    run({})
    runs = []
    for _ in range(repeats):
        timings: dict[str, float] = {}
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        wave = run(timings)
        timings["total"] = time.perf_counter() - t0
        runs.append(timings)
    return {k: float(np.median([r.get(k, 0.0) for r in runs])) for k in runs[0]}, wave


def convolution_flops(model: nn.Module, run: Callable[[dict], torch.Tensor]) -> float:
    """Floating-point operations of every convolution layer of ``model`` during ``run`` (2 per MAC,
    from the layers' shapes)."""
    total = 0.0

    def hook(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        per_output = 2 * layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        if isinstance(layer, nn.ConvTranspose1d):  # each input sample meets every tap once
            total += per_output * layer.out_channels * inputs[0].shape[0] * inputs[0].shape[-1]
        else:
            total += per_output * output.numel()

    kinds = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            run({})
    finally:
        for h in handles:
            h.remove()
    return total


def convolution_seconds(run: Callable[[dict], torch.Tensor]) -> float:
    """Seconds spent in convolution kernels during ``run`` (profiler self time of ``*conv*`` operators)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        run({})
    return sum(e.self_cpu_time_total for e in prof.key_averages() if "conv" in e.key) / 1e6


def matmul_rate(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 5) -> float:
    """FLOP/s of square float32 matrix products on the current threads (the best of ``sizes``): the
    CPU's dense rate as the BLAS library reaches it."""
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size)
        a @ a
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - t0))
    return best


def print_floor(official_seconds: float, flops: float, conv_seconds: float) -> None:
    """How far the exact path can go: its convolutions cost the same arithmetic as the official ones, at
    best at the faster of the official kernels' own rate and the dense matrix-product rate."""
    rate = matmul_rate()
    floor_seconds = min(conv_seconds, flops / rate)
    print(
        f"\nconvolutions of the official run: {conv_seconds:.3f} s of {official_seconds:.3f} s "
        f"({100 * conv_seconds / official_seconds:.0f} %), {flops / 1e9:.1f} GFLOP at "
        f"{flops / conv_seconds / 1e9:.0f} GFLOP/s; dense matrix products run at {rate / 1e9:.0f} GFLOP/s"
    )
    print(
        f"at the faster of the two rates the same convolutions alone take {floor_seconds:.3f} s = "
        f"{floor_seconds / official_seconds:.2f} x the official time: the floor of any exact (same "
        "arithmetic, float32) path"
    )


def compare(args: argparse.Namespace) -> None:
    from official_inference import OfficialModel

    from tts_adapt.adapters.lora import apply_lora
    from tts_adapt.adapters.merge import merge_lora

    config = {"libritts": LIBRITTS_CONFIG, "micro": MICRO_CONFIG}.get(args.config, args.config)
    torch.manual_seed(0)
    ours = build_model(config).eval()
    set_uniform_durations(ours, args.frames_per_token)
    official = OfficialModel(args.official, ours)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 178, (1, args.tokens), generator=g)
    tokens[0, 0] = 0
    with torch.no_grad():
        ref_s = ours.compute_style(torch.randn(1, 80, 200, generator=g))

    def eager(model: StyleTTS2) -> Callable[[dict], torch.Tensor]:
        return lambda t: infer_tokens(model, tokens, ref_s, timings=t).wave

    def adapted() -> StyleTTS2:
        model = _copy(ours)
        torch.manual_seed(7)  # the same random adapters twice
        return apply_lora(model, rank=16, init_lora_weights=False)  # random B: a non-zero update

    unmerged, merged = adapted(), merge_lora(adapted())
    systems: dict[str, Callable[[dict], torch.Tensor]] = {
        "official": lambda t: official.infer(tokens, ref_s, timings=t),
        "ours_eager": eager(ours),
        "ours_lora_unmerged": eager(unmerged),
        "ours_lora_merged": eager(merged),
    }
    if not args.no_onnx:
        from tts_adapt.export.onnx import export_onnx
        from tts_adapt.export.onnx_runtime import OnnxSynthesizer

        folder = tempfile.mkdtemp(prefix="bench_onnx_")
        export_onnx(ours, folder)
        onnx_model = OnnxSynthesizer(folder, threads=torch.get_num_threads())
        systems["onnxruntime"] = lambda t: onnx_model.infer_tokens(tokens, ref_s, timings=t).wave
    with torch.no_grad():
        for run in systems.values():  # warm-up
            torch.manual_seed(0)
            run({})
        results = {name: _time(run, args.repeats, seed=1) for name, run in systems.items()}
    ref_wave = results["official"][1]
    lora_ref = results["ours_lora_unmerged"][1]
    audio_s = ref_wave.numel() / ours.sample_rate
    base = results["official"][0]["total"]
    print(
        f"{args.config} StyleTTS 2, cpu, {torch.get_num_threads()} threads, {args.tokens} tokens -> "
        f"{audio_s:.2f} s audio; median of {args.repeats}"
    )
    print(
        f"{'system':20s} {'total s':>8s} {'x official':>10s} {'max|diff|':>10s}  "
        + " ".join(f"{s[:10]:>10s}" for s in STAGES)
    )
    for name, (t, wave) in results.items():
        against = lora_ref if name == "ours_lora_merged" else ref_wave
        diff = float((wave - against).abs().max()) if wave.shape == against.shape else float("nan")
        if name == "ours_lora_unmerged":
            diff = float("nan")  # other weights than the official run
        print(
            f"{name:20s} {t['total']:8.3f} {t['total'] / base:10.3f} {diff:10.2e}  "
            + " ".join(f"{t.get(s, 0.0):10.3f}" for s in STAGES)
        )
    print("max|diff|: to the official waveform (merged LoRA: to the unmerged one); same seed for all")
    with torch.no_grad():
        torch.manual_seed(1)
        flops = convolution_flops(ours, systems["ours_eager"])
        torch.manual_seed(1)
        conv_seconds = convolution_seconds(systems["official"])
    print_floor(base, flops, conv_seconds)
