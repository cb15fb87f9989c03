"""No utterance vanishes unreported: every command that reads data accounts for every file it found.

The expected numbers come from how :func:`damaged_corpus` was built (11 wav files, each bad one bad for
one known reason), not from the code under test: used + skipped per reason + not selected = found,
the JSON-lines report lists exactly the skipped files, and the one-line summary says the same.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tts_adapt.cli import main
from tts_adapt.models.styletts2.config import MICRO_CONFIG

from .conftest import DAMAGED


def read_report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_account(printed: str, report: Path, expected: dict[str, str | None], not_selected: int = 0) -> None:
    """The summary line and the report agree with ``expected`` (id -> reason, None = used)."""
    found = len(expected)
    used = sum(v is None for v in expected.values())
    reasons = Counter(v for v in expected.values() if v is not None)
    line = next(ln for ln in printed.splitlines() if ln.startswith("data: "))
    assert f"data: {used} of {found} utterances used" in line, line
    assert f"skipped {sum(reasons.values())}: " in line, line
    for code, n in reasons.items():
        assert re.search(rf"\b{n} {code}\b", line), (code, line)
    assert "unaccounted" not in line
    assert f"report: {report}" in line
    if not_selected:
        assert f"not selected {not_selected}" in line
    rows = [r for r in read_report(report) if r["action"] == "skipped"]
    assert {r["id"]: r["code"] for r in rows} == {k: v for k, v in expected.items() if v is not None}
    assert used + len(rows) + not_selected == found


def test_curvature_reports_every_skipped_utterance(micro_bases, damaged_corpus, tmp_path, capsys):
    out = tmp_path / "curv.safetensors"
    argv = ["curvature", "--checkpoint", str(micro_bases[0]), "--config", str(MICRO_CONFIG),
            "--data", str(damaged_corpus), "--method", "diag", "--objective", "text",
            "--max-seconds", "3", "--max-frames", "1200", "--out", str(out), "--no-progress",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    check_account(capsys.readouterr().out, Path(f"{out}.data_report.jsonl"), DAMAGED)


def test_prepare_data_gives_the_same_account(damaged_corpus, tmp_path, capsys):
    report = tmp_path / "report.jsonl"
    argv = ["prepare-data", "--data", str(damaged_corpus), "--min-duration", "1.1", "--max-duration", "3",
            "--report", str(report), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    check_account(capsys.readouterr().out, report, DAMAGED)


def test_split_data_counts_what_it_could_not_read(damaged_corpus, tmp_path, capsys):
    """split-data reads transcripts only: the three transcript problems are its skips."""
    train = tmp_path / "train.txt"
    argv = ["split-data", "--data", str(damaged_corpus), "--test", "1", "--train-out", str(train),
            "--test-out", str(tmp_path / "test.txt")]  # fmt: skip
    assert main(argv) == 0
    read_time = {"missing_transcript", "empty_transcript"}
    expected = {k: (v if v in read_time else None) for k, v in DAMAGED.items()}
    check_account(capsys.readouterr().out, train.with_suffix(".report.jsonl"), expected)


def test_selection_options_are_counted_as_not_selected(damaged_corpus, tmp_path, capsys):
    report = tmp_path / "report.jsonl"
    argv = ["prepare-data", "--data", str(damaged_corpus), "--limit", "4", "--report", str(report),
            "--min-duration", "1.1", "--max-duration", "3",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("data: "))
    # 3 unreadable transcripts are skipped while reading; --limit 4 then leaves 4 of the other 8
    assert "of 11 utterances used" in line and "not selected 4: 4 --limit" in line, line
    used = int(line.split()[1])
    skipped = len([r for r in read_report(report) if r["action"] == "skipped"])
    assert used + skipped + 4 == 11


@pytest.mark.parametrize("keep", [False, True])
def test_unsupported_text_is_skipped_unless_kept(damaged_corpus, tmp_path, keep):
    from tts_adapt.data import FeatureCache, PrepareConfig, load_corpus, prepare_corpus

    utts = [u for u in load_corpus(damaged_corpus) if u.id in ("good1", "emoji", "cjk")]
    cfg = PrepareConfig(keep_unsupported_text=keep)
    out = prepare_corpus(utts, cache=FeatureCache(tmp_path / "c"), config=cfg, progress=False)
    rows = {p.id: p for p in out.report.problems if p.code == "unsupported_text"}
    assert set(rows) == {"emoji", "cjk"}
    assert {p.action for p in rows.values()} == {"kept" if keep else "skipped"}
    assert "U+1F600 GRINNING FACE" in rows["emoji"].reason and "U+4F60" in rows["cjk"].reason
    assert sorted(p.id for p in out.items) == (["cjk", "emoji", "good1"] if keep else ["good1"])


def test_unsupported_characters_follow_unicode_categories():
    """Expected sets from the Unicode character database (names and scripts), written out by hand."""
    from tts_adapt.text.support import unsupported_characters

    assert (
        unsupported_characters("Hello, world! It's 20\u00b0C, \u00a35 or \u20ac3 \u2014 \u201cok\u201d.")
        == []
    )
    assert unsupported_characters("Caf\u00e9 na\u00efve \u00bd") == []  # Latin letters with accents, ½
    assert unsupported_characters("snow \u2603 man \u266a \U0001f600") == ["\u2603", "\u266a", "\U0001f600"]
    assert unsupported_characters("\u4f60\u597d \u03a9 \u0661") == ["\u4f60", "\u597d", "\u03a9", "\u0661"]
    assert unsupported_characters("bell\x07") == ["\x07"]
