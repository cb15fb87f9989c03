"""Every reader on a fixture tree of its layout, including the transcript problems each can meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts_adapt.data import (
    BadInputError,
    SkipReport,
    Utterance,
    detect_layout,
    load_corpus,
    read_filelist,
    read_folder,
    read_libritts,
    read_ljspeech,
    read_vctk,
    write_filelist,
)

from .helpers import build_folder, build_libritts, build_ljspeech, build_vctk, tone, write_audio


def test_libritts_reads_all_subsets_and_reports_transcript_problems(tmp_path):
    root = build_libritts(tmp_path / "LibriTTS")
    report = SkipReport()
    utts = read_libritts(root, report=report)
    assert len(utts) == 3 * 2 * 2
    assert {u.speaker for u in utts} == {"19", "26", "1089"}
    assert utts == sorted(utts, key=lambda u: (u.speaker, u.id, str(u.audio_path)))
    u = next(x for x in utts if x.id == "19_198_000001_000000")
    assert u.text == "Sentence 1 of 19."
    assert u.duration == pytest.approx(0.9, abs=1e-3)
    assert u.audio_path == root / "train-clean-100" / "19" / "198" / "19_198_000001_000000.wav"
    assert u.phonemes is None
    assert sorted(p.code for p in report.skipped) == ["empty_transcript", "missing_transcript"]
    assert any("19_198_000009_000000.normalized.txt" in p.reason for p in report.skipped)


def test_libritts_subset_selection(tmp_path):
    root = build_libritts(tmp_path / "LibriTTS")
    test = read_libritts(root, subsets=["test-clean"])
    assert {u.speaker for u in test} == {"1089"} and len(test) == 4
    assert read_libritts(root / "test-clean") == test  # a subset folder works as root
    with pytest.raises(FileNotFoundError, match="available: test-clean, train-clean-100"):
        read_libritts(root, subsets=["train-clean-360"])
    with pytest.raises(ValueError, match="does not look like LibriTTS"):
        read_libritts(tmp_path)


def test_strict_mode_names_the_file(tmp_path):
    root = build_libritts(tmp_path / "LibriTTS")
    with pytest.raises(BadInputError, match="19_198_000009_000000"):
        read_libritts(root, report=SkipReport(strict=True))


def test_vctk_mics_and_speaker_without_transcripts(tmp_path):
    root = build_vctk(tmp_path / "VCTK-Corpus-0.92")
    report = SkipReport()
    utts = read_vctk(root, report=report)
    assert [u.id for u in utts] == ["p225_001_mic1", "p225_002_mic1", "p248_001_mic1", "p248_002_mic1"]
    assert utts[0].text == "Please call Stella number 1."
    assert utts[0].speaker == "p225" and utts[0].audio_path.suffix == ".flac"
    assert utts[0].duration == pytest.approx(0.7, abs=1e-3)
    assert [p.code for p in report.skipped] == ["missing_transcript"] * 2
    assert all("p315" in p.path for p in report.skipped)
    mic2 = read_vctk(tmp_path, mic="mic2")  # the parent of VCTK-Corpus-0.92 works too
    assert [u.id for u in mic2][:1] == ["p225_001_mic2"]
    assert [u.id for u in read_vctk(root, speakers=["p248"])] == ["p248_001_mic1", "p248_002_mic1"]
    with pytest.raises(ValueError, match="mic1"):
        read_vctk(root, mic="mic3")
    with pytest.raises(FileNotFoundError, match="p999"):
        read_vctk(root, speakers=["p999"])


def test_ljspeech_columns_and_bad_lines(tmp_path):
    root = build_ljspeech(tmp_path / "LJSpeech-1.1")
    report = SkipReport()
    utts = read_ljspeech(root, report=report)
    by_id = {u.id: u for u in utts}
    assert list(by_id) == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert by_id["LJ001-0002"].text == "In fourteen fifty it began"  # normalised column preferred
    assert by_id["LJ001-0003"].text == "Only raw text"  # raw text when the normalised one is empty
    assert by_id["LJ001-0001"].speaker == "LJ"
    assert by_id["LJ001-0001"].duration == pytest.approx(0.9, abs=1e-3)
    codes = sorted(p.code for p in report.skipped)
    assert codes == ["bad_line", "empty_transcript"]
    assert any("metadata.csv:5" in p.reason for p in report.skipped)


def test_plain_folder(tmp_path):
    root = build_folder(tmp_path / "my_voice")
    report = SkipReport()
    utts = read_folder(root, report=report)
    assert [u.id for u in utts] == ["take1", "take2"]
    assert {u.speaker for u in utts} == {"my_voice"}
    assert [p.code for p in report.skipped] == ["missing_transcript"]
    (root / "session2").mkdir()
    write_audio(root / "session2" / "a.wav", tone(0.5))
    (root / "session2" / "a.txt").write_text("More.", encoding="utf-8")
    assert [u.id for u in read_folder(root, speaker="me", recursive=True)] == ["session2/a", "take1", "take2"]
    assert len(read_folder(root)) == 2


def test_filelist_ipa_speaker_and_audio_resolution(tmp_path):
    vctk = build_vctk(tmp_path / "VCTK-Corpus-0.92")
    lst = tmp_path / "train.txt"
    lst.write_text(
        "p248_001_mic1.wav|wiː nˈuː wiː hæd ðə ɡˈoʊl. |0\n"
        "p248_002_mic1.wav|ɪt wˈʌzn̩t tə bˈiː. |0\n"
        "\n"
        "just_one_field\n",
        encoding="utf-8",
    )
    report = SkipReport()
    utts = read_filelist(lst, vctk / "wav48_silence_trimmed", report=report)
    assert [u.id for u in utts] == ["p248_001_mic1", "p248_002_mic1"]
    # flat names resolve to <speaker-prefix>/<name>.flac, IPA is kept verbatim (trailing space too)
    assert utts[0].audio_path == vctk / "wav48_silence_trimmed" / "p248" / "p248_001_mic1.flac"
    assert utts[0].phonemes == "wiː nˈuː wiː hæd ðə ɡˈoʊl. " == utts[0].text
    assert utts[0].speaker == "0" and utts[0].duration == pytest.approx(0.7, abs=1e-3)
    assert [p.code for p in report.skipped] == ["bad_line"]

    plain = tmp_path / "test_p225.txt"
    plain.write_text(
        "p225_001_mic1.wav|Please call Stella.\np225_002_mic1.wav| Ask her. \n", encoding="utf-8"
    )
    utts = load_corpus(f"{plain}::{vctk / 'wav48_silence_trimmed'}")
    assert [(u.speaker, u.text, u.phonemes) for u in utts] == [
        ("p225", "Please call Stella.", None),
        ("p225", "Ask her.", None),
    ]
    assert all(u.audio_path.exists() for u in utts)


def test_filelist_missing_audio_is_kept_for_preparation_to_report(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("nowhere/a.wav|Hello there.|spk\n", encoding="utf-8")
    (u,) = read_filelist(lst)
    assert u.audio_path == tmp_path / "nowhere" / "a.wav" and u.duration is None and u.speaker == "spk"


def test_write_filelist_round_trip(tmp_path):
    root = build_folder(tmp_path / "voice")
    utts = [u.replace(phonemes="həlˈoʊ") for u in read_folder(root)]
    out = tmp_path / "lists" / "train.txt"
    write_filelist(utts, out, audio_root=root)
    assert out.read_text(encoding="utf-8").splitlines()[0] == "take1.wav|həlˈoʊ|voice"
    back = read_filelist(out, root)
    assert [(u.id, u.phonemes, u.speaker, u.audio_path) for u in back] == [
        (u.id, u.phonemes, u.speaker, u.audio_path) for u in utts
    ]
    with pytest.raises(ValueError, match="'|'"):
        write_filelist([Utterance("x", root / "take1.wav", "a|b", "s")], out, use_phonemes=False)


def test_write_filelist_reads_back_from_any_directory(tmp_path, monkeypatch):
    """Audio named relative to the working directory must not be written as if relative to the list."""
    build_folder(tmp_path / "corpus" / "voice")
    monkeypatch.chdir(tmp_path)
    utts = read_folder(Path("corpus") / "voice")  # relative paths, as a CLI user types them
    assert not utts[0].audio_path.is_absolute()
    elsewhere = tmp_path / "run" / "target" / "train.txt"
    write_filelist(utts, elsewhere, use_phonemes=False)
    below = tmp_path / "corpus" / "all.txt"
    write_filelist(utts, below, use_phonemes=False)
    assert below.read_text(encoding="utf-8").startswith("voice/take1.wav|")  # portable with its corpus
    monkeypatch.chdir(tmp_path / "run")
    for lst in (elsewhere, below):
        back = read_filelist(lst)
        assert [u.audio_path.resolve() for u in back] == [(tmp_path / u.audio_path).resolve() for u in utts]
        assert all(u.duration is not None for u in back)  # the audio was found


def test_detect_layout_and_load_corpus(tmp_path):
    lib = build_libritts(tmp_path / "LibriTTS")
    vctk = build_vctk(tmp_path / "vctk" / "VCTK-Corpus-0.92")
    lj = build_ljspeech(tmp_path / "LJSpeech-1.1")
    folder = build_folder(tmp_path / "me")
    lst = tmp_path / "list.txt"
    lst.write_text("me/take1.wav|Hi.|me\n", encoding="utf-8")
    assert [detect_layout(p) for p in (lib, vctk, tmp_path / "vctk", lj, folder, lst)] == [
        "libritts", "vctk", "vctk", "ljspeech", "folder", "filelist",
    ]  # fmt: skip
    assert len(load_corpus(lib)) == 12
    assert len(load_corpus(lib, subsets=["test-clean"])) == 4
    assert len(load_corpus(vctk, mic="mic2")) == 4
    assert len(load_corpus(lj)) == 3
    assert len(load_corpus(folder)) == 2
    assert load_corpus(lst)[0].audio_path == folder / "take1.wav"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="cannot tell what corpus"):
        load_corpus(empty)
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "missing")


def test_corpus_with_no_usable_utterances_is_an_error(tmp_path):
    root = tmp_path / "voice"
    write_audio(root / "a.wav", tone(0.5))
    (root / "a.txt").write_text("", encoding="utf-8")
    write_audio(root / "b.wav", tone(0.5))
    (root / "b.txt").write_text(" ", encoding="utf-8")
    with pytest.raises(ValueError, match=r"none of 2 utterances is usable \(skipped 2: 2 empty_transcript\)"):
        load_corpus(root)


def test_reads_the_reference_experiment_file_lists(paper_splits_dir):
    lists = sorted(paper_splits_dir.glob("*.txt"))
    assert len(lists) >= 18
    counts = {}
    for path in lists:
        report = SkipReport()
        utts = read_filelist(path, Path("/nonexistent-audio-root"), report=report, durations=False)
        assert not report.problems, (path, report.summary())
        counts[path.stem] = len(utts)
        ipa = path.stem.startswith(("libritts", "train_", "val_"))
        assert all((u.phonemes is not None) == ipa for u in utts), path
        if path.stem.startswith("test_p"):
            assert {u.speaker for u in utts} == {path.stem[len("test_") :]}
        if path.stem.startswith("libritts"):
            assert all(u.audio_path.as_posix().count("/") >= 4 and u.speaker.isdigit() for u in utts)
    assert counts["train_p248"] == 356 and counts["val_p248"] == 20 and counts["test_p248"] == 20
    assert counts["libritts_subset_10"] == 10 and counts["libritts_subset_1000"] == 1000
    assert all(counts[f"test_p{n}"] == 20 for n in (225, 234, 238, 245, 261, 294, 302, 326, 335, 347))
