"""The reference recordings shipped with the base model: what they are, how they are found, and that
``tts-adapt synth`` speaks in them without a recording of the user's own."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tts_adapt.cli import main
from tts_adapt.models.styletts2.shipped_voices import VOICES_DIR, resolve_reference, shipped_voices

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_every_voice_is_a_short_24khz_recording():
    voices = shipped_voices()
    assert len(voices) >= 4
    for v in voices.values():
        wave, sr = sf.read(v.path, dtype="float32")
        assert sr == 24000 and wave.ndim == 1, v.name
        assert 1.0 < len(wave) / sr < 10.0, v.name
        assert np.sqrt(np.mean(wave**2)) > 0.01, f"{v.name} is silent"
    # different genders, so the demo offers more than one kind of voice
    assert len({v.gender for v in voices.values()}) == 2


@needs_espeak
def test_voices_are_unseen_corpus_voices_rendered_by_espeak():
    """Each entry is an utterance of a voice in the corpus's held-out subset (``make_corpus`` puts its
    last speakers there; pre-training never reads them), and espeak-ng renders the same audio from that
    utterance's text, pitch and rate."""
    from tts_adapt.data.synthetic import corpus_plan, synthesize

    doc = json.loads((VOICES_DIR / "voices.json").read_text())
    # the corpus of the model card: make-corpus --speakers 48 --utterances 25 --test-speakers 12 --seed 0
    _, plan = corpus_plan(48, 25, 0, "train-synth", 12, "test-synth")
    by_id = {utt_id: (voice, orig, norm, pitch, speed) for voice, utt_id, orig, norm, pitch, speed in plan}
    for entry in doc["voices"]:
        utt_id = entry["source"].rsplit("/", 1)[-1].removesuffix(".wav")
        voice, orig, norm, pitch, speed = by_id[utt_id]
        assert voice.subset == "test-synth" and voice.speaker == entry["speaker"], entry["name"]
        assert (voice.accent, voice.variant, orig) == (entry["accent"], entry["variant"], entry["text"])
        shipped, _ = sf.read(VOICES_DIR / entry["file"], dtype="float32")
        rendered = synthesize(norm, voice, pitch, speed)
        assert len(shipped) == len(rendered), entry["name"]
        assert np.abs(shipped - np.clip(rendered, -1, 1)).max() < 1e-3, entry["name"]  # 16-bit PCM


def test_resolve_reference():
    voices = shipped_voices()
    first = next(iter(voices.values()))
    assert resolve_reference(None, None) == str(first.path)
    name = list(voices)[-1]
    assert resolve_reference(None, name) == str(voices[name].path)
    assert resolve_reference("mine.wav", None) == "mine.wav"
    with pytest.raises(ValueError, match="not both"):
        resolve_reference("mine.wav", name)
    with pytest.raises(ValueError, match=f"unknown voice 'nobody'.*{name}"):
        resolve_reference(None, "nobody")


def test_bad_index_names_file_and_field(tmp_path):
    (tmp_path / "voices.json").write_text(
        json.dumps({"format": 1, "voices": [{"name": "a", "file": "a.flac"}]})
    )
    with pytest.raises(ValueError, match=r"voices\.json: voices\[0\] lacks speaker, accent, gender, text"):
        shipped_voices(tmp_path)
    entry = {"name": "a", "file": "a.flac", "speaker": "1", "accent": "en", "gender": "male", "text": "x"}
    (tmp_path / "voices.json").write_text(json.dumps({"format": 1, "voices": [entry]}))
    with pytest.raises(FileNotFoundError, match="names a.flac"):
        shipped_voices(tmp_path)
    (tmp_path / "voices.json").write_text(json.dumps({"voices": []}))
    with pytest.raises(ValueError, match='"format": 1'):
        shipped_voices(tmp_path)
    assert shipped_voices(tmp_path / "absent") == {}


@needs_espeak
def test_cli_synth_speaks_in_a_shipped_voice(tmp_path, capsys):
    """No --reference: the base model speaks in the first shipped voice, exactly as if that recording
    had been passed; --voice picks another."""
    voices = shipped_voices()
    first, other = list(voices)[0], list(voices)[1]

    def synth(name: str, *extra: str) -> np.ndarray:
        out = tmp_path / f"{name}.wav"
        code = main(
            [
                "synth",
                "--model",
                "tts-adapt-base",
                "--text",
                "Hello there.",
                "--out",
                str(out),
                "--seed",
                "3",
                *extra,
            ]
        )
        assert code == 0
        return sf.read(out, dtype="float32")[0]

    default = synth("default")
    assert np.array_equal(default, synth("explicit", "--reference", str(voices[first].path)))
    spoken_by_other = synth("other", "--voice", other)
    assert not np.array_equal(default, spoken_by_other)
    from tts_adapt.audio_out import dbfs, speech_rms

    for clip in (default, spoken_by_other):  # written at one speech level (raw, they differ by 9 dB)
        assert abs(dbfs(speech_rms(clip, 24000)) + 20.0) < 1.0 and np.abs(clip).max() < 1.0
        assert not np.any(clip[-int(0.2 * 24000) :])  # a tail of silence after the speech
    assert np.array_equal(synth("named", "--voice", first), default)
    capsys.readouterr()
    assert (
        main(
            [
                "synth",
                "--model",
                "tts-adapt-base",
                "--text",
                "Hi.",
                "--voice",
                "nobody",
                "--out",
                str(tmp_path / "x.wav"),
            ]
        )
        == 1
    )
    assert "unknown voice 'nobody'" in capsys.readouterr().err
