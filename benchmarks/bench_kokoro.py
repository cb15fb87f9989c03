"""Kokoro-82M synthesis speed: our paths against Kokoro's reference (KModel) and the int8 runtime.

Same tokens and voice-pack row for every system; the text front end (espeak-ng) is left out, it is the
same for all. Systems:

* ``ours``: our modules in PyTorch float32 (eager), as ``tts-adapt synth`` runs them;
* ``kmodel``: Kokoro's reference ``KModel`` (PyPI ``kokoro``, installed without its requirements) on
  the same float weights, PyTorch float32;
* ``int8``: the int8 ONNX graph of kokoro-onnx in onnxruntime (what Kokoro's CPU users run);
* ``onnx``: our float ONNX export (``tts-adapt export --format onnx``) in onnxruntime.

Timings interleave the systems (each repeat runs every system once), so load changes hit them alike;
the medians and the ratios to ``kmodel`` and to ``int8`` are printed. ``--memory`` also runs each
system alone in a fresh process and reports its peak resident memory. Usage:

    python benchmarks/bench_kokoro.py --threads 2 --repeats 5 [--memory] [--systems ours,kmodel,int8,onnx]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TEXT = "Speech synthesis has come a long way, and the best small models now sound natural to most listeners."
VOICE = "af_heart"
SYSTEMS = ("ours", "kmodel", "int8", "onnx")


def _inputs(model):
    from tts_adapt.models.styletts2.frontend import TextFrontend
    from tts_adapt.models.styletts2.inference import voice_pack_for

    fe = TextFrontend.for_model(model)
    ids = fe.encode(fe.phonemize(TEXT))
    return ids, voice_pack_for(model, VOICE).style_for(fe.n_phoneme_tokens(ids))


def _kmodel(weights: Path, tmp: Path):
    """KModel on our float weights: written once in kokoro-v1_0.pth's layout, read by KModel itself."""
    import importlib
    import importlib.util
    import types

    from tts_adapt.models.styletts2.checkpoint import read_net
    from tts_adapt.models.styletts2.config import KOKORO_CONFIG, load_config

    spec = importlib.util.find_spec("kokoro")
    if spec is None:
        raise SystemExit("kmodel needs the reference package: pip install --no-deps kokoro==0.9.4 loguru")
    if "kokoro" not in sys.modules:
        pkg = types.ModuleType("kokoro")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["kokoro"] = pkg
    kmodel = importlib.import_module("kokoro.model")
    pth = tmp / "kokoro-v1_0.pth"
    if not pth.exists():
        torch.save({m: {"module." + k: v for k, v in sd.items()} for m, sd in read_net(weights).items()}, pth)
    cfg = load_config(KOKORO_CONFIG)
    mp, text = cfg["model_params"], cfg["text"]
    config = {
        "vocab": text["vocab"],
        "n_token": mp["n_token"],
        "plbert": {k: v for k, v in cfg["plbert_model_params"].items() if k != "vocab_size"},
        "hidden_dim": mp["hidden_dim"],
        "style_dim": mp["style_dim"],
        "n_layer": mp["n_layer"],
        "max_dur": mp["max_dur"],
        "dropout": mp["dropout"],
        "text_encoder_kernel_size": mp["text_encoder_kernel_size"],
        "n_mels": mp["n_mels"],
        "istftnet": {k: v for k, v in mp["decoder"].items() if k not in ("type", "window_dtype")},
    }
    return kmodel.KModel(repo_id="hexgrad/Kokoro-82M", config=config, model=str(pth)).eval()


def build(name: str, threads: int, tmp: Path, inputs: tuple[list[int], torch.Tensor] | None = None):
    """``run()`` for one system (each call synthesises the benchmark utterance once). With ``inputs``
    (token ids, style row) our float model is built only by the systems that run it, so a ``--memory``
    process holds what its system needs and nothing else."""
    from tts_adapt.models.kokoro import int8_onnx_path, kokoro_paths
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.models.styletts2.inference import infer_tokens

    torch.set_num_threads(threads)
    weights, config = kokoro_paths()
    needs_model = inputs is None or name == "ours" or (name == "onnx" and not (tmp / "onnx").is_dir())
    model = load_official(weights, config).eval() if needs_model else None
    ids, ref_s = inputs if inputs is not None else _inputs(model)
    tokens = torch.tensor([ids])
    if name == "ours":
        return lambda: infer_tokens(model, tokens, ref_s).wave.numel()
    if name == "kmodel":
        km = _kmodel(Path(weights), tmp)
        del model
        return lambda: km.forward_with_tokens(tokens, ref_s, 1.0)[0].numel()
    import onnxruntime as ort

    if name == "int8":
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(int8_onnx_path()), opts, providers=["CPUExecutionProvider"])
        feed = {"tokens": np.array([ids], np.int64), "style": ref_s.numpy(), "speed": np.ones(1, np.float32)}
        del model
        return lambda: sess.run(None, feed)[0].size
    if name == "onnx":
        from tts_adapt.export.onnx import MANIFEST, export_onnx
        from tts_adapt.export.onnx_runtime import OnnxSynthesizer

        folder = tmp / "onnx"
        if not (folder / MANIFEST).is_file():
            export_onnx(model, folder)
        onnx_model = OnnxSynthesizer(folder, threads=threads)
        del model
        return lambda: onnx_model.infer_tokens(tokens, ref_s).wave.numel()
    raise SystemExit(f"unknown system {name!r}; expected {', '.join(SYSTEMS)}")


def peak_memory(name: str, threads: int, tmp: Path) -> float:
    """GB of peak resident memory of a fresh process that builds ``name`` and synthesises twice (its
    inputs read from ``tmp/inputs.pt``, written by the timing run)."""
    out = subprocess.run(
        [sys.executable, __file__, "--only", name, "--threads", str(threads), "--tmp", str(tmp)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_gb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--memory", action="store_true", help="peak memory of each system in its own process")
    ap.add_argument("--only", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help="folder for the KModel checkpoint and our ONNX export (kept for reuse)")
    args = ap.parse_args()
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="bench-kokoro-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if args.only:
        saved = torch.load(tmp / "inputs.pt", weights_only=True)
        run = build(args.only, args.threads, tmp, (saved["ids"].tolist(), saved["style"]))
        with torch.no_grad():
            run(), run()
        # VmHWM, not ru_maxrss: a child started by fork + exec inherits its parent's ru_maxrss on Linux,
        # so every system measured from a big parent would read the parent's peak
        hwm = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
        peak = int(hwm.split()[1]) / 1024**2  # kB -> GB
        print(json.dumps({"system": args.only, "peak_gb": peak}))
        return
    names = [s for s in args.systems.split(",") if s]
    runs = {n: build(n, args.threads, tmp) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    samples = {}
    with torch.no_grad():
        for n in names:  # warm-up
            samples[n] = runs[n]()
        for _ in range(args.repeats):
            for n in names:
                t0 = time.perf_counter()
                runs[n]()
                times[n].append(time.perf_counter() - t0)
    result = {}
    for n in names:
        med = float(np.median(times[n]))
        audio = samples[n] / 24000
        result[n] = {"median_s": med, "audio_s": audio, "rtf": med / audio, "times": times[n]}
    for base in ("kmodel", "int8"):
        if base in result:
            for n in names:
                result[n][f"x_{base}"] = result[n]["median_s"] / result[base]["median_s"]
    if args.memory:
        from tts_adapt.models.kokoro import kokoro_paths
        from tts_adapt.models.styletts2 import load_official

        ids, style = _inputs(load_official(*kokoro_paths()).eval())
        torch.save({"ids": torch.tensor(ids), "style": style}, tmp / "inputs.pt")
        for n in names:
            result[n]["peak_gb"] = peak_memory(n, args.threads, tmp)
    print(json.dumps(result, indent=1))
    for n in names:
        r = result[n]
        extra = " ".join(f"{k}={v:.2f}" for k, v in r.items() if k.startswith("x_") or k == "peak_gb")
        timing = f"median {r['median_s']:.2f} s for {r['audio_s']:.2f} s of audio (RTF {r['rtf']:.3f})"
        print(f"{n:7s} {timing} {extra}")


if __name__ == "__main__":
    main()
