"""Data commands: ``make-corpus``, ``download``, ``prepare-data``, ``corpus-info``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("tts_adapt")

DOWNLOAD_TARGETS = ("styletts2-libritts", "kokoro", "libritts", "vctk", "ljspeech")


def register(sub) -> None:
    p = sub.add_parser(
        "make-corpus",
        help="write a corpus voiced by espeak-ng or another engine's voices, in the LibriTTS layout",
        description=(
            "Write a corpus in the LibriTTS layout at 24 kHz: by default a multi-speaker corpus of "
            "generated espeak-ng voices (for tests and demos); with --engine piper|flite|festival, one "
            "speaker per voice of that engine (real speakers' voices, e.g. adaptation targets), the "
            "voice's licence recorded in speakers.json."
        ),
    )
    p.add_argument("--out", type=Path, help="output folder (created; rerun to complete it); required")
    p.add_argument(
        "--engine",
        default="espeak",
        help="espeak, piper, flite, festival, or a registered engine; --list-voices shows voices "
        "(default: espeak)",
    )
    p.add_argument(
        "--voice",
        action="append",
        default=[],
        help="engine voice(s), repeat or comma-separate, 'all' for every one (default: the engine's first); "
        "not for espeak",
    )
    p.add_argument(
        "--list-voices", action="store_true", help="list the engine's voices and licences, then stop"
    )
    p.add_argument("--speakers", type=int, default=None, help="espeak: number of voices (default: 24)")
    p.add_argument("--utterances", type=int, default=40, help="(training) utterances per voice (default: 40)")
    p.add_argument(
        "--test-utterances",
        type=int,
        default=0,
        help="engines: held-out sentences per voice, the same for every voice, in the test subset "
        "(default: 0)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="voices and sentences are a function of this (default: 0)"
    )
    p.add_argument(
        "--test-speakers", type=int, default=0, help="put the last N voices in a held-out test subset"
    )
    p.add_argument(
        "--subset", default="train-synth", help="training subset folder name (default: train-synth)"
    )
    p.add_argument(
        "--test-subset", default="test-synth", help="held-out subset folder name (default: test-synth)"
    )
    p.add_argument("--jobs", type=int, default=None, help="parallel synthesis jobs (default: up to 4)")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus made with other settings")
    p.add_argument(
        "--check-speakers",
        action="store_true",
        help="measure speaker separability with Resemblyzer and write separability.json",
    )
    p.set_defaults(func=cmd_make_corpus)

    p = sub.add_parser(
        "download",
        help="download an official checkpoint (StyleTTS 2, Kokoro-82M) or a corpus (verified, resumable)",
        description=(
            "Download an official checkpoint (StyleTTS 2 LibriTTS, or Kokoro-82M's kokoro-v1_0.pth and "
            "config.json; Hugging Face Hub) or a corpus archive, "
            "verify it and extract it safely. Needs internet."
        ),
    )
    p.add_argument("target", nargs="?", choices=DOWNLOAD_TARGETS, help="what to download (or use --url)")
    p.add_argument(
        "--dest", type=Path, help="destination folder (default: the Hugging Face cache, for a checkpoint)"
    )
    p.add_argument(
        "--subset",
        action="append",
        default=[],
        help="LibriTTS subset(s), e.g. train-clean-100 (repeat or comma-separate)",
    )
    p.add_argument("--url", help="any zip/tar archive URL to fetch, verify and extract into --dest")
    p.add_argument("--sha256", help="expected sha256 of the archive (overrides a published one)")
    p.add_argument("--size", type=int, help="expected size of the archive in bytes")
    p.add_argument("--no-extract", action="store_true", help="keep the archive, do not extract it")
    p.add_argument("--keep-archive", action="store_true", help="keep the archive after extracting it")
    p.add_argument("--retries", type=int, default=3, help="retries per mirror, resuming (default: 3)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default: 60)")
    p.add_argument("--revision", help="checkpoint: Hub revision (branch, tag or commit)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "prepare-data",
        help="check, resample, phonemise and cache a corpus; report what was skipped",
        description=(
            "Read a corpus (--data), check every file, resample to 24 kHz, phonemise and cache mels, and "
            "write a report of skipped utterances. Optionally write a StyleTTS 2 file list of what is usable."
        ),
    )
    add_data_arguments(p)
    p.add_argument(
        "--report",
        type=Path,
        help="report file, JSON lines (default: beside --filelist, else data_report.jsonl here)",
    )
    p.add_argument("--filelist", type=Path, help="write usable utterances as path|phonemes|speaker here")
    p.add_argument("--strict", action="store_true", help="stop at the first bad file instead of skipping it")
    add_text_argument(p)
    p.add_argument("--min-duration", type=float, default=0.3, help="seconds (default: 0.3)")
    p.add_argument("--max-duration", type=float, default=30.0, help="seconds (default: 30)")
    p.add_argument("--cache-dir", type=Path, help="feature cache (default: $TTS_ADAPT_CACHE/features)")
    p.add_argument("--jobs", type=int, default=1, help="parallel decoding threads (default: 1)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("corpus-info", help="summarise a corpus: layout, speakers, hours, transcript problems")
    add_data_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_info)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--data`` family every command that reads a corpus uses."""
    p.add_argument(
        "--data",
        required=True,
        help="corpus folder (LibriTTS root or subset, VCTK 0.92, LJSpeech, folder of wav+txt) or a "
        "path|text|speaker file list (audio root after '::' or via --audio-root)",
    )
    p.add_argument("--audio-root", type=Path, help="audio root for a file list (default: the list's folder)")
    p.add_argument("--subsets", help="LibriTTS subsets to read, comma-separated (default: all present)")
    p.add_argument("--mic", default="mic1", choices=("mic1", "mic2"), help="VCTK microphone (default: mic1)")
    p.add_argument("--speakers", help="only these speakers, comma-separated")
    p.add_argument("--limit", type=int, help="a seeded random subset of this many utterances")
    p.add_argument("--limit-seed", type=int, default=0, help="seed for --limit (default: 0)")


def load_data_arguments(args, report=None):
    """Apply the ``--data`` family: read, restrict to speakers, take the seeded subset."""
    from ..data import SkipReport, detect_layout, load_corpus, random_subset, select_speakers

    spec = args.data
    path = Path(spec.split("::", 1)[0]) if not Path(spec).exists() and "::" in spec else Path(spec)
    layout = detect_layout(path)
    options = {}
    if layout == "libritts" and args.subsets:
        options["subsets"] = [s.strip() for s in args.subsets.split(",") if s.strip()]
    if layout == "vctk":
        options["mic"] = args.mic
    report = report if report is not None else SkipReport()
    utts = load_corpus(spec, audio_root=args.audio_root, layout=layout, report=report, **options)
    report.count_found(len(utts))
    if args.speakers:
        before = len(utts)
        utts = select_speakers(utts, [s.strip() for s in args.speakers.split(",") if s.strip()])
        report.leave_out("--speakers", before, len(utts))
    if args.limit is not None:
        before = len(utts)
        utts = random_subset(utts, min(args.limit, len(utts)), seed=args.limit_seed)
        report.leave_out("--limit", before, len(utts))
    return layout, utts


def add_text_argument(p: argparse.ArgumentParser) -> None:
    """``--keep-unsupported-text`` for the commands that phonemise transcripts."""
    p.add_argument(
        "--keep-unsupported-text",
        action="store_true",
        help="keep transcripts with characters the English front end cannot read (emoji, other "
        "scripts) (default: skipped, and listed as unsupported_text in the data report)",
    )


def read_only_line(report, utts) -> str:
    """The data account of a command that reads transcripts but no audio (durations from headers)."""
    durations = [u.duration for u in utts if u.duration is not None]
    hours = sum(durations) / 3600 if durations else None
    return report.line(len(utts), hours, len({u.speaker for u in utts}))


def cmd_make_corpus(args) -> int:
    from ..data import load_corpus
    from ..utils.io import write_json

    voices = [v.strip() for item in args.voice for v in item.split(",") if v.strip()]
    if args.list_voices:
        return list_voices(args.engine)
    if args.out is None:
        raise ValueError("make-corpus needs --out (the corpus folder)")
    if args.engine == "espeak":
        from ..data.synthetic import make_corpus

        if voices or args.test_utterances:
            raise ValueError("--voice and --test-utterances are for other engines; espeak takes --speakers")
        out = make_corpus(
            args.out,
            24 if args.speakers is None else args.speakers,
            args.utterances,
            seed=args.seed,
            subset=args.subset,
            test_speakers=args.test_speakers,
            test_subset=args.test_subset,
            jobs=args.jobs,
            overwrite=args.overwrite,
        )
    else:
        from ..data.voice_corpus import make_voice_corpus

        if args.speakers is not None:
            raise ValueError(
                f"--speakers is for espeak; choose {args.engine} voices with --voice (or --voice all)"
            )
        out = make_voice_corpus(
            args.out,
            args.engine,
            voices or None,
            args.utterances,
            test_utterances=args.test_utterances,
            test_speakers=args.test_speakers,
            seed=args.seed,
            subset=args.subset,
            test_subset=args.test_subset,
            jobs=args.jobs,
            overwrite=args.overwrite,
        )
    utts = load_corpus(out)
    hours = sum(u.duration or 0 for u in utts) / 3600
    print(
        f"wrote {len(utts)} utterances by {len({u.speaker for u in utts})} speakers ({hours:.2f} h) to {out}"
    )
    if args.check_speakers:
        from ..data.separability import corpus_separability

        result = corpus_separability(utts)
        write_json(out / "separability.json", result)
        if result["speakers"] < 2:
            print(f"Resemblyzer cosine similarity: within-speaker {result['within_mean']:.3f} (one speaker)")
        else:
            print(
                f"Resemblyzer cosine similarity: within-speaker {result['within_mean']:.3f}, "
                f"between-speaker {result['between_mean']:.3f}; nearest-centroid speaker accuracy "
                f"{100 * result['nearest_centroid_accuracy']:.1f}%"
            )
    return 0


def list_voices(engine_name: str) -> int:
    """One line per voice: name, speaker, sex, accent, native rate, licence, installed or what to install."""
    if engine_name == "espeak":
        print("espeak: generated voices (accent, variant, pitch, rate); choose how many with --speakers")
        return 0
    from ..data.engines import EngineNotInstalled, get_engine

    engine = get_engine(engine_name)
    for voice in engine.voices():
        try:
            engine.check([voice])
            state = "installed"
        except EngineNotInstalled as e:
            state = f"missing ({e})"
        print(
            f"{voice.name}\t{voice.speaker}\t{voice.gender}\t{voice.accent}\t{voice.sample_rate} Hz\t"
            f"{voice.license.name}\t{state}"
        )
    return 0


def cmd_download(args) -> int:
    from ..data import download as D

    subsets = [s.strip() for item in args.subset for s in item.split(",") if s.strip()]
    common = dict(retries=args.retries, timeout=args.timeout, keep_archive=args.keep_archive)
    if args.url:
        if args.target:
            raise ValueError("give either a target or --url, not both")
        if args.dest is None:
            raise ValueError("--url needs --dest")
        out = D.download_archive(
            args.url, args.dest, sha256=args.sha256, size=args.size, extract=not args.no_extract, **common
        )
        print(out)
        return 0
    if args.target is None:
        raise ValueError(f"name what to download ({', '.join(DOWNLOAD_TARGETS)}) or pass --url")
    if args.target in ("styletts2-libritts", "kokoro"):
        spec = {"styletts2-libritts": {}, "kokoro": {"repo_id": D.KOKORO_REPO, "files": D.KOKORO_FILES}}
        found = D.download_checkpoint(args.dest, revision=args.revision, **spec[args.target])
        for name, path in found.items():
            print(f"{name}: {path}")
        if args.target == "kokoro":  # the float checkpoint and its config.json, as --checkpoint/--config
            weights, config = (found[f] for f in D.KOKORO_FILES)
            print(f"use it with: --checkpoint {weights} --config {config}")
        return 0
    if args.dest is None:
        raise ValueError(f"downloading {args.target} needs --dest")
    if args.sha256 or args.size:
        if args.target == "libritts" and len(subsets) != 1:
            raise ValueError("--sha256/--size apply to one archive; name one LibriTTS subset")
        common.update(sha256=args.sha256, size=args.size)
    if args.no_extract:
        common["extract"] = False
    out = D.download_corpus(args.target, args.dest, subsets or None, **common)
    print(out)
    return 0


def cmd_prepare(args) -> int:
    from ..data import FeatureCache, PrepareConfig, SkipReport, prepare_corpus, write_filelist

    report_path = args.report or (
        args.filelist.with_suffix(".report.jsonl") if args.filelist else Path("data_report.jsonl")
    )
    report = SkipReport(strict=args.strict, path=report_path)
    try:
        _, utts = load_data_arguments(args, report)
    finally:
        report.save()
    cfg = PrepareConfig(
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        keep_unsupported_text=args.keep_unsupported_text,
    )
    prepared = prepare_corpus(
        utts,
        cache=FeatureCache(args.cache_dir),
        config=cfg,
        report=report,
        jobs=args.jobs,
        what=f"{args.data}",
    )
    print(prepared.summary())
    if args.filelist:
        usable = [p.utterance.replace(phonemes=p.phonemes) for p in prepared]
        write_filelist(usable, args.filelist, audio_root=args.filelist.parent)
        print(f"file list: {args.filelist}")
    return 0


def cmd_info(args) -> int:
    from ..data import SkipReport

    report = SkipReport()
    layout, utts = load_data_arguments(args, report)
    durations = [u.duration for u in utts if u.duration is not None]
    per_speaker: dict[str, int] = {}
    for u in utts:
        per_speaker[u.speaker] = per_speaker.get(u.speaker, 0) + 1
    info = {
        "data": args.data,
        "layout": layout,
        "utterances": len(utts),
        "speakers": len(per_speaker),
        "hours": round(sum(durations) / 3600, 4),
        "without_duration": len(utts) - len(durations),
        "min_seconds": round(min(durations), 3) if durations else None,
        "max_seconds": round(max(durations), 3) if durations else None,
        "with_phonemes": sum(u.phonemes is not None for u in utts),
        "skipped": dict(report.counts()),
        "not_selected": dict(report.not_selected),
        "found": report.found,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>20}: {v}")
        print(read_only_line(report, utts))
    return 0
