"""``tts-adapt split-data``: a seeded per-speaker train/test split written as two StyleTTS 2 file lists.

Adaptation must not see the sentences it is evaluated on; this makes the two sets explicit files that
``adapt --data`` and ``evaluate --target`` read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .data import add_data_arguments, load_data_arguments, read_only_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split-data", help="split a corpus per speaker into train/test file lists (seeded)")
    add_data_arguments(p)
    p.add_argument("--test", type=int, required=True, help="test utterances per speaker")
    p.add_argument("--seed", type=int, default=0, help="random seed of the choice of test utterances")
    p.add_argument("--train-out", required=True, type=Path, help="file list for the rest (adaptation)")
    p.add_argument("--test-out", required=True, type=Path, help="file list of the test utterances")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import SkipReport, per_speaker_subset, write_filelist

    report = SkipReport(path=args.train_out.with_suffix(".report.jsonl"))
    try:
        _, utts = load_data_arguments(args, report)
    finally:
        report.save()
    print(read_only_line(report, utts))
    if not utts:
        raise ValueError(f"no utterances in {args.data}")
    test = per_speaker_subset(utts, args.test, seed=args.seed)
    test_ids = {u.id for u in test}
    train = [u for u in utts if u.id not in test_ids]
    if not train:
        raise ValueError(f"--test {args.test} leaves no utterance for training in {args.data}")
    write_filelist(train, args.train_out, use_phonemes=False)
    write_filelist(test, args.test_out, use_phonemes=False)
    print(f"{len(train)} train / {len(test)} test utterances -> {args.train_out}, {args.test_out}")
    return 0
