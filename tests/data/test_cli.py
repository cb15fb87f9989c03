"""The data commands end to end: make-corpus, prepare-data, corpus-info."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tts_adapt.cli import main
from tts_adapt.data import load_corpus

from .helpers import build_folder, write_audio


@pytest.mark.espeak
def test_make_corpus_command(tmp_path, capsys):
    out = tmp_path / "synth"
    rc = main(
        [
            "-q",
            "make-corpus",
            "--speakers",
            "3",
            "--utterances",
            "2",
            "--test-speakers",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "wrote 6 utterances by 3 speakers" in capsys.readouterr().out
    assert len(load_corpus(out)) == 6
    assert len(load_corpus(out, subsets=["test-synth"])) == 2


def test_prepare_data_writes_filelist_and_report(tmp_path, capsys):
    root = build_folder(tmp_path / "voice")
    write_audio(root / "quiet.wav", np.zeros(24000, dtype=np.float32))
    (root / "quiet.txt").write_text("Nothing to hear.", encoding="utf-8")
    lst = tmp_path / "lists" / "voice.txt"
    rc = main(
        [
            "-q",
            "prepare-data",
            "--data",
            str(root),
            "--filelist",
            str(lst),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    # 4 wav files: one without transcript (skipped while reading), one silent, two used
    assert "data: 2 of 4 utterances used" in printed
    assert (
        "skipped 2: 1 missing_transcript, 1 silent" in printed or "skipped 2: 1 silent, 1 missing" in printed
    )
    report = [json.loads(x) for x in lst.with_suffix(".report.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["code"]) for r in report) == [
        ("orphan", "missing_transcript"),
        ("quiet", "silent"),
    ]
    back = load_corpus(lst)
    assert [u.id for u in back] == ["take1", "take2"]
    assert all(u.phonemes and u.speaker == "voice" and u.audio_path.exists() for u in back)

    rc = main(
        ["-q", "prepare-data", "--data", str(root), "--strict", "--cache-dir", str(tmp_path / "c"),
         "--report", str(tmp_path / "strict.jsonl")]
    )  # fmt: skip
    assert rc == 1 and "orphan.wav" in capsys.readouterr().err


def test_corpus_info(tmp_path, capsys):
    root = build_folder(tmp_path / "voice")
    assert main(["-q", "corpus-info", "--data", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "folder" and info["utterances"] == 2 and info["speakers"] == 1
    assert info["skipped"] == {"missing_transcript": 1}
    assert info["hours"] == pytest.approx(2 / 3600, abs=1e-4)
    assert (
        main(["-q", "corpus-info", "--data", str(root), "--limit", "1", "--limit-seed", "3", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["utterances"] == 1
    assert main(["-q", "corpus-info", "--data", str(tmp_path / "nope")]) == 1
    assert "corpus not found" in capsys.readouterr().err
