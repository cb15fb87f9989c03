"""Seconds per utterance of each corpus engine's voices, against espeak-ng measured in the same run.

One job, sentences of the corpus generator one after another, each timed from text to 24 kHz samples
(synthesis and resampling, as ``make-corpus`` does; writing the file is left out). A voice's first
sentence is timed apart: it includes loading the model (Piper) and is not counted in the mean.

    python benchmarks/bench_engines.py --sentences 20                    # every installed voice
    python benchmarks/bench_engines.py --sentences 20 --voices piper:en_US-joe-medium,flite:awb
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from tts_adapt.audio import SAMPLE_RATE
from tts_adapt.data.engines import EngineNotInstalled, engine_names, get_engine, to_corpus_rate
from tts_adapt.data.sentences import make_sentences


def time_espeak(sentences: list[str]) -> dict:
    """The default engine's cost per sentence (one fixed voice of the synthetic corpus)."""
    from tts_adapt.data.synthetic import make_voices, synthesize

    voice = make_voices(1, 0, ["train"])[0]
    synthesize(sentences[0], voice, voice.pitch, voice.speed)  # imports, first process start
    times, audio = [], 0.0
    for text in sentences:
        t = time.perf_counter()
        wave = synthesize(text, voice, voice.pitch, voice.speed)
        times.append(time.perf_counter() - t)
        audio += len(wave) / SAMPLE_RATE
    return summary("espeak", voice.espeak_voice, None, times, audio)


def summary(engine: str, voice: str, first: float | None, times: list[float], audio: float) -> dict:
    return {
        "engine": engine,
        "voice": voice,
        "first_s": None if first is None else round(first, 3),
        "mean_s_per_utt": round(statistics.mean(times), 4),
        "median_s_per_utt": round(statistics.median(times), 4),
        "audio_s_per_utt": round(audio / len(times), 3),
        "real_time_factor": round(sum(times) / audio, 4),
    }


def time_voice(engine_name: str, voice_name: str, sentences: list[str]) -> dict | None:
    engine = get_engine(engine_name)
    voice = engine.select([voice_name])[0]
    try:
        engine.check([voice])
    except EngineNotInstalled as e:
        print(f"skipped {engine_name}:{voice_name}: {e}")
        return None
    t = time.perf_counter()
    to_corpus_rate(engine.synthesize(sentences[0], voice, [0, 0]))
    first = time.perf_counter() - t
    times, audio = [], 0.0
    for i, text in enumerate(sentences):
        t = time.perf_counter()
        wave = to_corpus_rate(engine.synthesize(text, voice, [0, i + 1]))
        times.append(time.perf_counter() - t)
        audio += len(wave) / SAMPLE_RATE
        assert np.abs(wave).max() > 0.01, f"{engine_name}:{voice_name} produced silence"
    return summary(engine_name, voice_name, first, times, audio)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=20, help="timed sentences per voice (default 20)")
    p.add_argument("--voices", help="engine:voice pairs, comma-separated (default: every declared voice)")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()

    sentences = [norm for _, norm in make_sentences(args.sentences, [0, 99])]
    if args.voices:
        pairs = [tuple(item.split(":", 1)) for item in args.voices.split(",")]
    else:
        pairs = [(e, v.name) for e in engine_names()[1:] for v in get_engine(e).voices()]
    rows = [time_espeak(sentences)]
    for engine_name, voice_name in pairs:
        row = time_voice(engine_name, voice_name, sentences)
        if row:
            rows.append(row)
    base = rows[0]["mean_s_per_utt"]
    header = ("engine", "voice", "first s", "s/utt", "x espeak", "audio s", "RTF")
    print("{:>9} {:>22} {:>8} {:>7} {:>9} {:>8} {:>7}".format(*header))
    for r in rows:
        first = "" if r["first_s"] is None else f"{r['first_s']:.2f}"
        print(
            f"{r['engine']:>9} {r['voice']:>22} {first:>8} {r['mean_s_per_utt']:7.3f} "
            f"{r['mean_s_per_utt'] / base:9.2f} {r['audio_s_per_utt']:8.2f} {r['real_time_factor']:7.3f}"
        )
        r["ratio_to_espeak"] = round(r["mean_s_per_utt"] / base, 2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
