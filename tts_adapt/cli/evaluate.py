"""Evaluation commands: ``evaluate``, ``report``, ``ground-truth``, ``similarity``, ``wer``, ``per``, ``mos``,
``mcd``, ``train-per``.

The single-file tools print one number (or a JSON object with ``--json``) so scripts can use them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("tts_adapt")


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a machine-readable JSON object instead")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device for neural evaluators (default: cpu)")


def register(sub) -> None:
    from ..evaluation.asr import ASR_BACKENDS, DEFAULT_ASR, FALLBACK_ASR
    from ..evaluation.protocol import ALL_METRICS
    from ..evaluation.quality import MOS_BACKENDS
    from ..evaluation.similarity import SPEAKER_BACKENDS

    # ---- evaluate -------------------------------------------------------------------------------
    p = sub.add_parser(
        "evaluate",
        help="score a base model and adapted models on the target speaker and on held-out speakers",
        description=(
            "Synthesise a fixed, seeded test set with each system: (a) the target speaker's held-out texts, "
            "(b) held-out speakers in zero-shot mode from their reference audio, (c) for voice-pack models "
            "(Kokoro), the stock voices through every system against the base (--stock-voices). Writes "
            "per-utterance utterances.jsonl (stock_voices.jsonl) and aggregates.json (bootstrap 95% "
            "intervals, retention = adapted / base)."
        ),
    )
    p.add_argument(
        "--out", required=True, type=Path, help="output folder (audio, utterances.jsonl, aggregates.json)"
    )
    p.add_argument(
        "--target", help="corpus with the target speaker's held-out recordings (folder or file list)"
    )
    p.add_argument(
        "--target-speaker", help="the target speaker's id (needed if --target has several speakers)"
    )
    p.add_argument("--heldout", help="corpus of held-out speakers (folder or file list)")
    p.add_argument("--heldout-speakers", help="comma-separated subset of held-out speakers")
    p.add_argument("--n-target", type=int, default=20, help="target test sentences (default: 20)")
    p.add_argument("--n-heldout", type=int, default=5, help="test sentences per held-out speaker")
    p.add_argument(
        "--base",
        help="the base system spec, e.g. kokoro, kokoro:voice=am_michael, styletts2:CKPT:CONFIG, "
        "styletts2:default or espeak:en-us (default: without --systems, kokoro with --stock-voices or a "
        "voice-pack --system, else styletts2:default, the shipped base model)",
    )
    p.add_argument(
        "--system",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="an adapted system (repeatable), e.g. lora=adapted:runs/lora (a tts-adapt adapt folder; a "
        "voice-pack model speaks the target sentences in its learned voice, or adapted:DIR:voice=NAME)",
    )
    stock = p.add_argument_group("stock voices (voice-pack models: Kokoro)")
    stock.add_argument(
        "--stock-voices",
        metavar="all|NAME,...",
        help="speak these stock voices through the base and every system: identity retention (similarity "
        "to the base's clip of the same voice, text and seed), WER and WER rise, and whether each voice "
        "is still nearest its own base voice",
    )
    stock.add_argument(
        "--stock-sentences",
        type=int,
        default=4,
        help="sentences per stock voice: the first N of --stock-texts (default: 4)",
    )
    stock.add_argument(
        "--stock-texts",
        type=Path,
        help="sentences for the stock voices, one a line (default: the 16 ground-truth sentences)",
    )
    p.add_argument(
        "--systems",
        type=Path,
        help="YAML/JSON list of {name, spec, role: base|adapted|other, info: {method, lambda, "
        "trainable_params}}",
    )
    p.add_argument("--no-ground-truth", action="store_true", help="skip the ground-truth (ceiling) row")
    p.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="load adapted: systems even on a base checkpoint other than the one they were adapted from",
    )
    p.add_argument(
        "--metrics",
        help=f"comma-separated subset of {','.join(ALL_METRICS)} (default: sim,wer,mcd,dnsmos, and "
        "distillmos where installed)",
    )
    p.add_argument(
        "--speaker-backend",
        default="resemblyzer",
        choices=sorted(SPEAKER_BACKENDS),
        help="speaker-embedding model for similarity",
    )
    p.add_argument("--speaker-model", help="local weights folder for wavlm-base-plus-sv / ecapa")
    p.add_argument(
        "--asr-backend",
        choices=sorted(ASR_BACKENDS),
        help=f"recogniser for WER/CER (default: {DEFAULT_ASR} when installed, else {FALLBACK_ASR})",
    )
    p.add_argument(
        "--asr-model",
        help="your own Whisper weights for whisper/faster-whisper/openai-whisper (folder or .pt)",
    )
    p.add_argument(
        "--per-model", help="phoneme recogniser for PER (official ASR .pth or train-per .safetensors)"
    )
    p.add_argument(
        "--no-heldout-dnsmos", action="store_true", help="score DNSMOS and Distill-MOS on the target set only"
    )
    p.add_argument(
        "--accumulate",
        action="store_true",
        help="keep systems that earlier calls scored into --out (same test set and scoring) in the "
        "aggregates: a grid of runs evaluated one per call",
    )
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="test-set, synthesis and bootstrap seed (default: 0)")
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_evaluate)

    # ---- report ---------------------------------------------------------------------------------
    p = sub.add_parser("report", help="HTML + Markdown comparison report from evaluation folders")
    p.add_argument("eval_dirs", nargs="+", type=Path, help="folders written by `tts-adapt evaluate`")
    p.add_argument(
        "-o", "--out", type=Path, default=Path("report.html"), help="output HTML (default: report.html)"
    )
    p.add_argument("--title", default="Speaker adaptation: similarity and forgetting", help="page title")
    p.add_argument("--n-audio", type=int, default=3, help="audio examples per set (default: 3)")
    p.add_argument("--no-markdown", action="store_true", help="write only the HTML file")
    p.add_argument(
        "--note",
        type=Path,
        help="a text file shown under the title (paragraphs split by blank lines): what the run can and "
        "cannot show",
    )
    p.set_defaults(func=cmd_report)

    # ---- ground-truth ---------------------------------------------------------------------------
    p = sub.add_parser(
        "ground-truth",
        help="score named sets of recordings with their texts: WER, speaker similarity, DNSMOS, Distill-MOS",
        description="The ceiling and floor every later number is read against: each set (a folder of *.wav "
        "with same-name *.txt, a file list, any corpus layout; repeat a name to add corpora to one set) "
        "is scored per clip and summarised with two-level bootstrap intervals. Writes OUT/clips.jsonl, "
        "OUT/ground_truth.json and OUT/ground_truth.md (the table, then every clip's transcript).",
    )
    p.add_argument(
        "--set",
        action="append",
        required=True,
        metavar="NAME=CORPUS",
        dest="sets",
        help="a named set of clips (repeatable), e.g. espeak=gt/espeak.txt or kokoro=gt/kokoro/af_heart",
    )
    p.add_argument(
        "--out", required=True, type=Path, help="output folder (clips.jsonl, ground_truth.json/.md)"
    )
    p.add_argument(
        "--metrics",
        default="wer,sim,dnsmos,distillmos",
        help="comma-separated subset of wer,sim,dnsmos,distillmos (default: all four)",
    )
    p.add_argument(
        "--asr-backend",
        choices=sorted(ASR_BACKENDS),
        help=f"recogniser for WER (default: {DEFAULT_ASR} when installed, else {FALLBACK_ASR})",
    )
    p.add_argument("--asr-model", help="your own Whisper weights (folder or .pt) for the user backends")
    p.add_argument(
        "--speaker-backend",
        default="resemblyzer",
        choices=sorted(SPEAKER_BACKENDS),
        help="speaker-embedding model for similarity",
    )
    p.add_argument("--speaker-model", help="local weights folder for wavlm-base-plus-sv / ecapa")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_ground_truth)

    # ---- single-file tools ----------------------------------------------------------------------
    p = sub.add_parser("similarity", help="cosine similarity of the speakers of two recordings")
    p.add_argument("reference", help="reference recording")
    p.add_argument("hypothesis", help="recording to compare")
    p.add_argument(
        "--backend", default="resemblyzer", choices=sorted(SPEAKER_BACKENDS), help="speaker-embedding model"
    )
    p.add_argument("--model-path", help="local weights folder (wavlm-base-plus-sv, ecapa)")
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser(
        "wer",
        help="word error rate of a recording against its text",
        description=f"Transcribe a recording (default: {DEFAULT_ASR}: Whisper base from its PyPI packages, "
        "offline) and print its WER against the text, both normalised the same way.",
    )
    p.add_argument("audio", nargs="?", help="recording to transcribe")
    p.add_argument(
        "--audio", dest="audio_option", metavar="AUDIO", help="the recording, as an option instead"
    )
    p.add_argument("--text", required=True, help="the reference text")
    p.add_argument(
        "--backend",
        choices=sorted(ASR_BACKENDS),
        help=f"speech recogniser (default: {DEFAULT_ASR} when installed, else {FALLBACK_ASR})",
    )
    p.add_argument(
        "--model-path",
        help="your own Whisper weights for whisper/faster-whisper/openai-whisper (folder or .pt)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for the faster-whisper backends, 0 for its own choice (default: 0)",
    )
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_wer)

    p = sub.add_parser("per", help="phoneme error rate of a recording (CTC phoneme recogniser)")
    p.add_argument("audio", help="recording to recognise")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="reference text (phonemised with espeak-ng)")
    text.add_argument("--phonemes", help="reference IPA")
    p.add_argument(
        "--model", required=True, help="official Utils/ASR/epoch_00080.pth or a train-per recogniser"
    )
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_per)

    p = sub.add_parser(
        "mos", help="predicted MOS of a recording: DNSMOS (P.835 overall) or Distill-MOS; optionally UTMOS"
    )
    p.add_argument("audio", help="recording to rate")
    p.add_argument(
        "--backend",
        default="dnsmos",
        choices=[*MOS_BACKENDS, "all"],
        help="which predictor prints its number (default: dnsmos; all: every one, named)",
    )
    p.add_argument("--utmos", action="store_true", help="also UTMOS (needs its code and weights on disk)")
    p.add_argument("--utmos-repo", help="checkout of tarepan/SpeechMOS (folder with hubconf.py)")
    p.add_argument("--utmos-weights", help="utmos22_strong_step7459_v1.pt (default: torch hub checkpoints)")
    _device(p)
    _json_flag(p)
    p.set_defaults(func=cmd_mos)

    p = sub.add_parser("mcd", help="mel-cepstral distortion (DTW-aligned) between two recordings of one text")
    p.add_argument("reference", help="ground-truth recording")
    p.add_argument("hypothesis", help="synthesised recording")
    _json_flag(p)
    p.set_defaults(func=cmd_mcd)

    p = sub.add_parser(
        "train-per",
        help="train a CTC phoneme recogniser on an evaluation corpus (for PER)",
        description="Train the StyleTTS 2 aligner architecture with CTC on real recordings that the model "
        "under test never saw. Resumable; writes OUT/recognizer.safetensors.",
    )
    p.add_argument("data", help="corpus (folder or file list)")
    p.add_argument("--out", required=True, type=Path, help="output folder (recognizer.safetensors, state)")
    p.add_argument("--speakers", help="comma-separated subset of speakers")
    p.add_argument("--max-utterances", type=int, help="use at most this many utterances (seeded choice)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the data")
    p.add_argument("--hidden-dim", type=int, default=128, help="recogniser width")
    p.add_argument("--layers", type=int, default=3, help="recogniser depth")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed (subset, initialisation, order)")
    p.add_argument(
        "--no-word-tokenize",
        action="store_true",
        help="phonemes as Kokoro's runtimes make them (espeak-ng IPA as it comes), not re-spaced by NLTK "
        "as in the StyleTTS 2 notebook: for a recogniser that aligns Kokoro's training data",
    )
    _json_flag(p)
    p.set_defaults(func=cmd_train_per)


def _print(args: argparse.Namespace, value: float, payload: dict, digits: int = 4) -> int:
    print(json.dumps(payload, ensure_ascii=False) if args.json else f"{value:.{digits}f}")
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    from ..evaluation.similarity import get_speaker_encoder

    enc = get_speaker_encoder(args.backend, device=args.device, model_path=args.model_path)
    sim = enc.similarity(args.reference, args.hypothesis)
    return _print(
        args,
        sim,
        {
            "similarity": sim,
            "backend": args.backend,
            "reference": args.reference,
            "hypothesis": args.hypothesis,
        },
    )


def cmd_wer(args: argparse.Namespace) -> int:
    from ..evaluation.asr import default_asr_backend, get_transcriber
    from ..evaluation.text_norm import normalize_text

    if (args.audio is None) == (args.audio_option is None):
        raise ValueError("give the recording once: `wer AUDIO --text ...` or `wer --audio AUDIO --text ...`")
    args.audio = args.audio or args.audio_option
    backend = args.backend or default_asr_backend()
    asr = get_transcriber(backend, args.model_path, args.device, threads=args.threads)
    r = asr.score(args.audio, args.text)
    return _print(
        args,
        r["wer"],
        {
            "wer": r["wer"],
            "cer": r["cer"],
            "hypothesis": r["hypothesis"],
            "reference_normalized": normalize_text(args.text),
            "hypothesis_normalized": normalize_text(r["hypothesis"]),
            "backend": backend,
            "decoding": getattr(asr, "settings", None),
            "audio": args.audio,
        },
    )


def cmd_per(args: argparse.Namespace) -> int:
    from ..evaluation.per import PhonemeRecognizer

    ref = args.phonemes
    if ref is None:
        from ..text import Phonemizer

        ref = Phonemizer()(args.text)
    r = PhonemeRecognizer.load(args.model, args.device).per(args.audio, ref)
    return _print(
        args,
        r["per"],
        {
            "per": r["per"],
            "hypothesis": r["phonemes"],
            "reference": ref,
            "model": args.model,
            "audio": args.audio,
        },
    )


def cmd_mos(args: argparse.Namespace) -> int:
    from ..evaluation.quality import DNSMOS, UTMOS, DistillMOS

    chosen = ("dnsmos", "distillmos") if args.backend == "all" else (args.backend,)
    payload: dict = {}
    numbers: dict[str, float] = {}
    if "dnsmos" in chosen:
        d = DNSMOS().score([args.audio])[0]
        payload.update(dnsmos_ovrl=d["ovrl"], dnsmos_sig=d["sig"], dnsmos_bak=d["bak"], dnsmos_p808=d["p808"])
        numbers["dnsmos"] = d["ovrl"]
    if "distillmos" in chosen:
        numbers["distillmos"] = payload["distillmos"] = DistillMOS(args.device).score([args.audio])[0]
    payload["audio"] = args.audio
    if args.utmos:
        numbers["utmos"] = payload["utmos"] = UTMOS(args.utmos_repo, args.utmos_weights, args.device).score(
            [args.audio]
        )[0]
    if args.json:
        print(json.dumps(payload))
    elif len(chosen) == 1:
        first = numbers.pop(chosen[0])
        print(f"{first:.4f}" + "".join(f" {k}={v:.4f}" for k, v in numbers.items()))
    else:
        print(" ".join(f"{k}={v:.4f}" for k, v in numbers.items()))
    return 0


def cmd_mcd(args: argparse.Namespace) -> int:
    from ..evaluation.audio_io import load_wave
    from ..evaluation.mcd import MCD_SAMPLE_RATE, mcd_from_cepstra, mel_cepstrum

    r = mcd_from_cepstra(
        mel_cepstrum(load_wave(args.reference, MCD_SAMPLE_RATE)),
        mel_cepstrum(load_wave(args.hypothesis, MCD_SAMPLE_RATE)),
    )
    return _print(args, r["mcd"], {**r, "reference": args.reference, "hypothesis": args.hypothesis}, digits=3)


def _load(spec: str, speakers: str | None = None):
    from ..data import load_corpus

    utts = load_corpus(spec)
    if speakers:
        from ..data import select_speakers

        utts = select_speakers(utts, [s.strip() for s in speakers.split(",") if s.strip()])
    return utts


def _systems(args: argparse.Namespace):
    from ..evaluation.protocol import GROUND_TRUTH, SystemEntry
    from ..evaluation.systems import make_system

    with_cases = bool(getattr(args, "target", None) or getattr(args, "heldout", None))
    entries = [] if args.no_ground_truth or not with_cases else [SystemEntry(GROUND_TRUTH, GROUND_TRUTH)]
    allow = {"allow_base_mismatch": bool(getattr(args, "allow_base_mismatch", False))}
    if args.systems:
        if not args.systems.is_file():
            raise FileNotFoundError(f"systems file not found: {args.systems}")
        import yaml

        listed = yaml.safe_load(args.systems.read_text(encoding="utf-8"))
        if not isinstance(listed, list):
            raise ValueError(f"{args.systems}: expected a list of {{name, spec, role, info}} entries")
        for n, d in enumerate(listed):
            if not isinstance(d, dict) or "name" not in d or "spec" not in d:
                raise ValueError(f"{args.systems}: entry {n} needs 'name' and 'spec'")
            sys_ = make_system(str(d["spec"]), name=str(d["name"]), device=args.device, **allow)
            info = {**getattr(sys_, "info", {}), **(d.get("info") or {})}
            entries.append(SystemEntry(str(d["name"]), d.get("role", "adapted"), sys_, info))
    adapted = []
    for item in args.system:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise ValueError(f"--system expects NAME=SPEC, got {item!r}")
        sys_ = make_system(spec, name=name, device=args.device, **allow)
        adapted.append(SystemEntry(name, "adapted", sys_, dict(getattr(sys_, "info", {}))))
    base = args.base
    if base is None and not args.systems:
        voice_packs = getattr(args, "stock_voices", None) or any(
            getattr(e.system, "uses_voice_packs", False) for e in adapted
        )
        if voice_packs:
            base = "kokoro"  # the voice-pack base the stock voices are measured against
        else:
            from ..models.styletts2.default import default_model_paths

            base = "styletts2:default" if default_model_paths() else None  # the shipped base model
    if base:
        sys_ = make_system(base, name="base", device=args.device)
        entries.append(SystemEntry("base", "base", sys_, dict(getattr(sys_, "info", {}))))
    entries += adapted
    if not any(e.role != GROUND_TRUTH for e in entries):
        raise ValueError("nothing to evaluate: give --base, --system or --systems")
    return entries


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.protocol import EvalConfig, default_metrics, run_evaluation
    from ..evaluation.testset import build_test_set

    if not args.target and not args.heldout and not args.stock_voices:
        raise ValueError(
            "give --target (the adaptation speaker's held-out recordings), --heldout, --stock-voices, "
            "or several"
        )
    stock = None
    if args.stock_voices:
        from ..evaluation.stock_voices import StockVoices, default_sentences

        stock = StockVoices(
            args.stock_voices.strip(),
            default_sentences(args.stock_sentences, args.stock_texts),
            args.seed,
        )
    cfg = EvalConfig(
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip())
        if args.metrics
        else default_metrics(),
        speaker_backend=args.speaker_backend,
        speaker_model=args.speaker_model,
        asr_backend=args.asr_backend,
        asr_model=args.asr_model,
        per_model=args.per_model,
        heldout_dnsmos=not args.no_heldout_dnsmos,
        n_boot=args.bootstrap,
        seed=args.seed,
        device=args.device,
    )
    entries = _systems(args)
    target = _load(args.target) if args.target else None
    heldout = _load(args.heldout, args.heldout_speakers) if args.heldout else None
    cases = (
        build_test_set(target, heldout, args.n_target, args.n_heldout, args.seed, args.target_speaker)
        if target is not None or heldout is not None
        else []
    )
    agg = run_evaluation(
        entries, cases, args.out, cfg, progress=not args.quiet, accumulate=args.accumulate, stock=stock
    )
    summary = {
        name: {st: {m: round(v["mean"], 4) for m, v in d.items()} for st, d in s["sets"].items()}
        for name, s in agg["systems"].items()
    }
    for name, s in agg["systems"].items():
        if s.get("retention"):
            summary[name]["retention"] = {m: round(v["mean"], 4) for m, v in s["retention"].items()}
        if "stock" in s:
            summary[name]["stock"] = _stock_summary(s["stock"])
    if args.json:
        print(json.dumps({"out": str(args.out), "summary": summary}))
    else:
        for name, d in summary.items():
            stock_line = d.pop("stock", None)
            print(
                f"{name}: "
                + "; ".join(
                    f"{st}: "
                    + ", ".join(
                        f"{m}={v}"
                        for m, v in vals.items()
                        if m in ("sim", "wer", "per", "mcd", "dnsmos", "distillmos")
                    )
                    for st, vals in d.items()
                )
            )
            if stock_line:
                print(f"{name}: stock voices: " + ", ".join(f"{m}={v}" for m, v in stock_line.items()))
        files = ["utterances.jsonl", *(["stock_voices.jsonl"] if stock else []), "aggregates.json"]
        print("wrote " + ", ".join(str(args.out / f) for f in files))
    return 0


def _stock_summary(stock: dict) -> dict:
    """The stock-voice numbers a terminal line shows (means; intervals are in aggregates.json)."""
    out = {
        m: round(stock[m]["mean"], 4)
        for m in ("retention", "wer", "wer_base", "wer_rise")
        if stock.get(m) and stock[m].get("mean") is not None
    }
    kept = stock.get("nearest_own")
    if kept:
        out["nearest_own"] = f"{kept['kept']}/{kept['of']}"
        if kept["not_kept"]:
            out["not_nearest_own"] = kept["not_kept"]
    return out


def cmd_ground_truth(args: argparse.Namespace) -> int:
    from ..evaluation.ground_truth import GROUND_TRUTH_METRICS, load_sets, run_ground_truth, table_markdown
    from ..evaluation.protocol import EvalConfig

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    bad = sorted(set(metrics) - set(GROUND_TRUTH_METRICS))
    if bad or not metrics:
        raise ValueError(
            f"--metrics: unknown {bad or 'empty list'}; choose from {','.join(GROUND_TRUTH_METRICS)}"
        )
    specs = []
    for item in args.sets:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise ValueError(f"--set expects NAME=CORPUS, got {item!r}")
        specs.append((name, spec))
    cfg = EvalConfig(
        metrics=metrics,
        speaker_backend=args.speaker_backend,
        speaker_model=args.speaker_model,
        asr_backend=args.asr_backend,
        asr_model=args.asr_model,
        n_boot=args.bootstrap,
        seed=args.seed,
        device=args.device,
    )
    summary = run_ground_truth(load_sets(specs), args.out, cfg, progress=not args.quiet)
    if args.json:
        print(json.dumps({"out": str(args.out), "sets": summary["sets"]}))
    else:
        print(table_markdown(summary))
        print(f"wrote {args.out / 'ground_truth.md'} and {args.out / 'ground_truth.json'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..evaluation.report import write_report

    note = None
    if args.note:
        if not args.note.is_file():
            raise FileNotFoundError(f"--note {args.note} does not exist")
        note = args.note.read_text(encoding="utf-8")
    html_path, md_path = write_report(
        args.eval_dirs, args.out, args.title, args.n_audio, not args.no_markdown, note=note
    )
    print(f"wrote {html_path}" + (f" and {md_path}" if md_path else ""))
    return 0


def cmd_train_per(args: argparse.Namespace) -> int:
    from ..data import random_subset
    from ..evaluation.per_train import PERTrainConfig, train_per_recognizer
    from ..text import Phonemizer

    utts = _load(args.data, args.speakers)
    if args.max_utterances:
        utts = random_subset(utts, min(args.max_utterances, len(utts)), seed=args.seed)
    todo = [u for u in utts if not u.phonemes]
    phonemizer = Phonemizer(word_tokenize=not args.no_word_tokenize)
    ipa = dict(zip([u.id for u in todo], phonemizer.phonemize([u.text for u in todo]), strict=True))
    items = [(u.audio_path, u.phonemes or ipa[u.id]) for u in utts]
    cfg = PERTrainConfig(
        hidden_dim=args.hidden_dim,
        n_layers=args.layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    _, summary = train_per_recognizer(items, args.out, cfg, progress=not args.quiet)
    if args.json:
        print(
            json.dumps(
                {
                    "recognizer": str(args.out / "recognizer.safetensors"),
                    "val_per": summary["val_per"],
                    "n_train": summary["n_train"],
                    "n_val": summary["n_val"],
                }
            )
        )
    else:
        print(f"wrote {args.out / 'recognizer.safetensors'} (validation PER {summary['val_per']})")
    return 0
