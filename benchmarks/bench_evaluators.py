"""Seconds of CPU time per minute of audio for each evaluator (not a test; prints a table).

Usage::

    python benchmarks/bench_evaluators.py [--minutes 1.0] [--threads 1] [--json]

The audio is espeak-ng speech (two voices, the same sentences), so every number is reproducible. PER is
timed with randomly initialised recognisers of the official aligner's size and of the ``train-per``
default size: the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tts_adapt.data.sentences import make_sentences
from tts_adapt.evaluation.audio_io import duration_seconds, write_wave
from tts_adapt.evaluation.systems import espeak_synthesize


def make_audio(folder: Path, minutes: float) -> tuple[list[Path], list[Path], list[str]]:
    """Sentence pairs (voice A, voice B) until voice A has ``minutes`` of speech."""
    a, b, texts, total = [], [], [], 0.0
    for i, (_, text) in enumerate(make_sentences(400, 1)):
        wa, sr = espeak_synthesize(text, "en-us+f3", 60, 160)
        wb, srb = espeak_synthesize(text, "en-us+m3", 35, 140)
        write_wave(folder / f"a{i}.wav", wa, sr)
        write_wave(folder / f"b{i}.wav", wb, srb)
        a.append(folder / f"a{i}.wav")
        b.append(folder / f"b{i}.wav")
        texts.append(text)
        total += len(wa) / sr
        if total >= minutes * 60:
            break
    return a, b, texts


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0, help="minutes of audio to score (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from tts_adapt.evaluation.asr import get_transcriber
    from tts_adapt.evaluation.cache import EmbeddingCache
    from tts_adapt.evaluation.mcd import mcd_dtw
    from tts_adapt.evaluation.per import OFFICIAL_CONFIG, PhonemeRecognizer, build_aligner
    from tts_adapt.evaluation.per_train import PERTrainConfig
    from tts_adapt.evaluation.quality import DNSMOS
    from tts_adapt.evaluation.similarity import get_speaker_encoder

    with tempfile.TemporaryDirectory() as tmp:
        a, b, texts = make_audio(Path(tmp), args.minutes)
        minutes = sum(duration_seconds(p) for p in a) / 60.0
        # warm-up: first calls pay for imports and numba compilation, which is not per-audio cost
        mcd_dtw(a[0], b[0])
        enc = get_speaker_encoder("resemblyzer", cache=EmbeddingCache())
        enc.embed(b[:1])
        results = {}
        results["similarity (resemblyzer, batched)"] = timed(lambda: enc.embed(a))
        results["similarity (cached again)"] = timed(lambda: enc.embed(a))
        asr = get_transcriber("pocketsphinx")
        pairs = list(zip(a, texts, strict=True))
        results["WER (pocketsphinx)"] = timed(lambda: [asr.score(p, t) for p, t in pairs])
        dns = DNSMOS()
        dns.score(b[:1])
        results["DNSMOS"] = timed(lambda: dns.score(a))
        results["MCD-DTW"] = timed(lambda: [mcd_dtw(p, q) for p, q in zip(a, b, strict=True)])
        d = PERTrainConfig()
        small = {"hidden_dim": d.hidden_dim, "n_layers": d.n_layers, "token_embedding_dim": 64}
        sizes = {"PER (official aligner size)": OFFICIAL_CONFIG, "PER (train-per default size)": small}
        for label, cfg in sizes.items():
            rec = PhonemeRecognizer(build_aligner(cfg))
            rec.recognize(b[:1])
            results[label] = timed(lambda rec=rec: rec.recognize(a))
    table = {k: round(v / minutes, 3) for k, v in results.items()}
    if args.json:
        summary = {"minutes_of_audio": round(minutes, 3), "threads": args.threads, "s_per_min": table}
        print(json.dumps(summary))
        return
    print(f"{minutes:.2f} min of audio ({len(a)} utterances), torch threads={args.threads}")
    for k, v in table.items():
        print(f"{k:34s} {v:8.2f} s per minute of audio")
    print(f"(numpy {np.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
