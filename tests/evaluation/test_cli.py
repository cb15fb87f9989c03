import json

import pytest

from tts_adapt.cli import main

from .conftest import SENTENCES, needs_espeak

pytestmark = needs_espeak


def _out(capsys):
    return capsys.readouterr().out.strip()


def test_similarity_prints_a_number_and_json(voices, capsys):
    a, b = voices["A"], voices["B"]
    assert main(["similarity", str(a[0]), str(a[1])]) == 0
    same = float(_out(capsys))
    assert main(["similarity", str(a[0]), str(b[1]), "--json"]) == 0
    payload = json.loads(_out(capsys))
    assert payload["backend"] == "resemblyzer" and payload["similarity"] < same


def test_mcd_wer_mos(voices, capsys):
    a = voices["A"]
    assert main(["mcd", str(a[1]), str(a[1])]) == 0
    assert float(_out(capsys)) == pytest.approx(0.0, abs=1e-6)
    assert main(["mcd", str(a[1]), str(voices["B"][1]), "--json"]) == 0
    assert json.loads(_out(capsys))["mcd"] > 1.0
    assert main(["wer", str(a[0]), "--text", SENTENCES[0], "--json", "--backend", "pocketsphinx"]) == 0
    r = json.loads(_out(capsys))
    assert r["wer"] >= 0 and r["reference_normalized"].startswith("the quick brown fox")
    assert main(["mos", str(a[0])]) == 0
    assert 1.0 <= float(_out(capsys)) <= 5.0


def test_wer_defaults_to_whisper_base_offline(voices, capsys):
    """`tts-adapt wer AUDIO --text ...` with no backend named: Whisper base, a transcript close to the
    words, and the decoding settings in the JSON."""
    from tts_adapt.evaluation.asr import whisper_base_installed

    from ..conftest import missing_input

    if not whisper_base_installed():
        missing_input("Whisper base is not installed (pip install 'tts-adapt[eval]')")
    assert (
        main(["wer", "--audio", str(voices["A"][2]), "--text", SENTENCES[2], "--json", "--threads", "2"]) == 0
    )
    r = json.loads(_out(capsys))
    assert r["backend"] == "whisper-base" and r["decoding"]["beam_size"] == 5
    assert r["wer"] <= 0.25 and "old wooden table" in r["hypothesis_normalized"]
    assert main(["wer", "--text", SENTENCES[2]]) == 1
    assert "give the recording once" in capsys.readouterr().err


def test_mos_backends(voices, capsys):
    a = voices["A"][1]
    assert main(["mos", str(a), "--backend", "all", "--json"]) == 0
    r = json.loads(_out(capsys))
    assert 1.0 <= r["dnsmos_ovrl"] <= 5.0 and 1.0 <= r["distillmos"] <= 5.0
    assert main(["mos", str(a), "--backend", "distillmos"]) == 0
    assert float(_out(capsys)) == pytest.approx(r["distillmos"], abs=1e-4)


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["similarity", str(tmp_path / "missing.wav"), str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert "missing.wav" in err and "Traceback" not in err
    assert main(["per", str(tmp_path / "a.wav"), "--text", "hi", "--model", str(tmp_path / "none.pth")]) == 1
    assert "train-per" in capsys.readouterr().err


def test_evaluate_and_report_commands(synthetic_corpus, tmp_path, capsys):
    from tts_adapt.data import load_corpus

    spk = sorted({u.speaker for u in load_corpus(synthetic_corpus / "train-synth")})[0]
    systems = tmp_path / "systems.yaml"
    systems.write_text(
        "- name: lora\n  spec: espeak:en-gb+m3:pitch=40\n  info: {lambda: 2.0, trainable_params: 77}\n"
    )
    out = tmp_path / "ev"
    args = [
        "-q",
        "evaluate",
        "--out",
        str(out),
        "--target",
        str(synthetic_corpus / "train-synth"),
        "--target-speaker",
        spk,
        "--heldout",
        str(synthetic_corpus / "test-synth"),
        "--n-target",
        "2",
        "--n-heldout",
        "2",  # a speaker's similarity profile leaves its prompt out: one more recording is needed
        "--base",
        "espeak:en-us+f3",
        "--systems",
        str(systems),
        "--metrics",
        "sim,mcd",
        "--bootstrap",
        "200",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(_out(capsys))["summary"]
    assert set(summary) == {"ground_truth", "base", "lora"}
    assert "sim" in summary["lora"]["retention"]
    assert main(["report", str(out), "-o", str(tmp_path / "rep.html")]) == 0
    assert (tmp_path / "rep.html").exists() and (tmp_path / "rep.md").exists()
    assert main(["evaluate", "--out", str(out), "--base", "espeak:en-us"]) == 1
    assert "--target" in capsys.readouterr().err
