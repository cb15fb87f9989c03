"""The ground-truth command: named sets of clips scored per clip and per set, resumable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tts_adapt.cli import main
from tts_adapt.evaluation import ground_truth as gt
from tts_adapt.evaluation.protocol import EvalConfig

from .conftest import SENTENCES, needs_espeak

pytestmark = needs_espeak


@pytest.fixture
def folders(voices, tmp_path):
    """Voice A and voice B as two folders of wav + same-name txt (the plain corpus layout)."""
    out = {}
    for name in ("A", "B"):
        d = tmp_path / "sets" / name
        d.mkdir(parents=True)
        for i, (wav, text) in enumerate(zip(voices[name], SENTENCES)):
            shutil.copy(wav, d / f"{i}.wav")
            (d / f"{i}.txt").write_text(text + "\n")
        out[name] = d
    return out


def _rows(out):
    return [json.loads(x) for x in (out / "clips.jsonl").read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_sets_are_scored_per_clip_and_summarised(folders, tmp_path):
    """A set of two voices: each clip's similarity is to its own voice's other clips (leave one out,
    recomputed here from the embeddings), above its similarity to the other voice; WER is the corpus
    rate of the stored counts; intervals bracket the means."""
    sets = gt.load_sets([("two", str(folders["A"])), ("two", str(folders["B"])), ("one", str(folders["A"]))])
    assert [len(v) for v in sets.values()] == [8, 4]
    cfg = EvalConfig(metrics=("sim", "wer"), asr_backend="pocketsphinx", n_boot=200)
    summary = gt.run_ground_truth(sets, tmp_path / "gt", cfg, progress=False)
    rows = _rows(tmp_path / "gt")
    assert len(rows) == 12 and {r["set"] for r in rows} == {"two", "one"}

    from tts_adapt.evaluation.similarity import get_speaker_encoder

    two = [r for r in rows if r["set"] == "two"]
    emb = get_speaker_encoder("resemblyzer").embed([r["audio"] for r in two])
    for i, r in enumerate(two):
        mine = [j for j, q in enumerate(two) if q["speaker"] == r["speaker"] and j != i]
        theirs = [j for j, q in enumerate(two) if q["speaker"] != r["speaker"]]
        own = emb[mine].mean(0)
        other = emb[theirs].mean(0)
        assert r["sim"] == pytest.approx(float(emb[i] @ own / np.linalg.norm(own)), abs=1e-4)
        assert r["sim_other"] == pytest.approx(float(emb[i] @ other / np.linalg.norm(other)), abs=1e-4)
        assert r["sim"] > r["sim_other"]
    assert all(r.get("sim_other") is None for r in rows if r["set"] == "one")  # one voice: no other

    m = summary["sets"]["two"]["metrics"]
    assert m["wer"]["mean"] == pytest.approx(
        sum(r["wer_errors"] for r in two) / sum(r["wer_words"] for r in two)
    )
    for est in m.values():
        assert est["low"] <= est["mean"] <= est["high"]
    assert summary["sets"]["two"]["speakers"] == ["A", "B"]
    md = (tmp_path / "gt" / "ground_truth.md").read_text()
    assert md.count("| two | 8 | 2 |") == 1 and md.count("| one | 4 | 1 |") == 1
    assert all(f"| {r['text']} | {r['asr_text']} |" in md for r in rows)
    assert json.loads((tmp_path / "gt" / "ground_truth.json").read_text())["sets"]["one"]["clips"] == 4


def test_unchanged_sets_are_reused_and_a_changed_one_rescored(folders, tmp_path, monkeypatch):
    out = tmp_path / "gt"
    cfg = EvalConfig(metrics=("sim",), n_boot=100)
    sets = gt.load_sets([("a", str(folders["A"])), ("b", str(folders["B"]))])
    gt.run_ground_truth(sets, out, cfg, progress=False)
    first = {(r["set"], r["id"]): r["sim"] for r in _rows(out)}

    scored = []
    real = gt.score_set
    monkeypatch.setattr(gt, "score_set", lambda name, *a, **k: scored.append(name) or real(name, *a, **k))
    gt.run_ground_truth(sets, out, cfg, progress=False)
    assert scored == []
    shutil.copy(folders["A"] / "0.wav", folders["B"] / "1.wav")  # one clip of set b changes
    gt.run_ground_truth(
        gt.load_sets([("a", str(folders["A"])), ("b", str(folders["B"]))]), out, cfg, progress=False
    )
    assert scored == ["b"]
    again = {(r["set"], r["id"]): r["sim"] for r in _rows(out)}
    assert all(again[k] == first[k] for k in first if k[0] == "a")


def test_command_prints_the_table_and_refuses_bad_input(folders, tmp_path, capsys):
    out = tmp_path / "gt"
    assert (
        main(["-q", "ground-truth", "--set", f"a={folders['A']}", "--metrics", "sim", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "| set | clips | voices | similarity ↑ |" in printed and "| a | 4 | 1 |" in printed
    assert main(["ground-truth", "--set", "nameless", "--out", str(out)]) == 1
    assert "NAME=CORPUS" in capsys.readouterr().err
    assert main(["ground-truth", "--set", f"a={folders['A']}", "--metrics", "mcd", "--out", str(out)]) == 1
    assert "--metrics" in capsys.readouterr().err
    assert (
        main(["ground-truth", "--set", f"a={tmp_path / 'absent'}", "--metrics", "sim", "--out", str(out)])
        == 1
    )
    assert "absent" in capsys.readouterr().err


def test_voice_sets_render_each_shipped_voice_with_both_engines(tmp_path):
    """Two sentences: every shipped voice speaks both, with the base model and with espeak-ng at its own
    settings; the file lists read back as corpora whose speakers are the voices."""
    from tts_adapt.data import load_corpus
    from tts_adapt.evaluation.audio_io import duration_seconds
    from tts_adapt.evaluation.voice_sets import read_sentences, render
    from tts_adapt.models.styletts2.shipped_voices import shipped_voices

    texts = read_sentences()[:2]
    assert len(read_sentences()) == 16
    lists = render(tmp_path, ("espeak", "shipped"), texts)
    voices = sorted(shipped_voices())
    for path in lists:
        utts = load_corpus(path)
        assert sorted({u.speaker for u in utts}) == voices
        assert sorted({u.text for u in utts}) == sorted(texts)
        assert all(0.5 < duration_seconds(u.audio_path) < 10 for u in utts)
    a = (tmp_path / "espeak" / "annie" / "00.wav").stat().st_mtime_ns
    render(tmp_path, ("espeak",), texts)  # a rerun keeps what is there
    assert (tmp_path / "espeak" / "annie" / "00.wav").stat().st_mtime_ns == a


def test_voice_sets_render_kokoro_and_piper(tmp_path, kokoro_model):
    """Rows (a) and (d): Kokoro's four voices say what the model says for each voice with the sentence's
    seed (as `synth --model kokoro` does), written as 16-bit PCM; Piper's joe at its native 22.05 kHz."""
    import soundfile as sf

    from tts_adapt.data import load_corpus
    from tts_adapt.data.engines import get_engine
    from tts_adapt.data.engines.base import EngineNotInstalled
    from tts_adapt.evaluation.voice_sets import KOKORO_VOICES, render

    from ..conftest import missing_input

    piper = get_engine("piper")
    try:
        piper.check([v for v in piper.voices() if v.name == "en_US-joe-medium"])
    except EngineNotInstalled as e:
        missing_input(str(e))
    text = "Hello there."
    kokoro_list, piper_list = render(tmp_path, ("kokoro", "piper"), [text])
    assert sorted({u.speaker for u in load_corpus(kokoro_list)}) == sorted(KOKORO_VOICES)
    written, sr = sf.read(tmp_path / "kokoro" / "bf_emma" / "00.wav", dtype="float32")
    expected, _ = kokoro_model.synthesize(text, reference="bf_emma", seed=0)
    assert sr == 24000 and written.shape == expected.shape
    np.testing.assert_allclose(written, expected, atol=1.5 / 32768)
    (joe,) = load_corpus(piper_list)
    assert joe.speaker == "piper-joe" and joe.text == text
    assert sf.info(str(joe.audio_path)).samplerate == 22050
