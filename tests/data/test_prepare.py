"""Preparation: every kind of bad input is skipped with a reason (or raised in strict mode), good
audio is resampled and cached by content, and the cached mel is the official one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.audio import log_mel
from tts_adapt.data import (
    BadInputError,
    FeatureCache,
    FeatureSettings,
    PrepareConfig,
    Utterance,
    load_features,
    prepare_corpus,
)

from .helpers import tone, write_audio

IPA = "həlˈoʊ ðɛɹ."


def utt(path, text="Hello there.", phonemes=IPA, speaker="s") -> Utterance:
    return Utterance(path.stem, path, text, speaker, None, phonemes)


@pytest.fixture
def bad_corpus(tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(200)))
    (d / "empty.wav").write_bytes(b"")
    write_audio(d / "silent.wav", np.zeros(24000, dtype=np.float32))
    write_audio(d / "short.wav", tone(0.1))
    write_audio(d / "long.wav", tone(3.0))
    write_audio(d / "six_channels.wav", np.stack([tone(1.0)] * 6, axis=1))
    nan = tone(1.0)
    nan[100] = np.nan
    write_audio(d / "nan.wav", nan, subtype="FLOAT")
    write_audio(d / "good.wav", tone(1.0))
    write_audio(d / "stereo.wav", np.stack([tone(1.2), 0.5 * tone(1.2)], axis=1))
    write_audio(d / "narrowband.wav", tone(1.0, sr=16000), sr=16000)
    write_audio(d / "clipped.wav", np.sign(tone(1.0)).astype(np.float32))
    write_audio(d / "unknown_symbols.wav", tone(1.0))
    write_audio(d / "no_phonemes.wav", tone(1.0))
    write_audio(d / "no_text.wav", tone(1.0))
    utts = [utt(p) for p in sorted(d.glob("*.wav"))]
    utts = [
        u.replace(phonemes=IPA + " 你") if u.id == "unknown_symbols" else
        u.replace(phonemes="§§") if u.id == "no_phonemes" else
        u.replace(text=" ", phonemes=None) if u.id == "no_text" else u
        for u in utts
    ]  # fmt: skip
    utts.append(utt(d / "missing.wav"))
    return utts


def test_bad_input_is_skipped_with_reasons(bad_corpus, tmp_path):
    report_path = tmp_path / "run" / "data_report.jsonl"
    cfg = PrepareConfig(max_duration=2.0)
    out = prepare_corpus(bad_corpus, cache=FeatureCache(tmp_path / "cache"), config=cfg,
                         report_path=report_path, progress=False)  # fmt: skip
    kept = {p.id: p for p in out}
    assert sorted(kept) == ["clipped", "good", "narrowband", "stereo", "unknown_symbols"]
    lines = [json.loads(x) for x in report_path.read_text(encoding="utf-8").splitlines()]
    skipped = {x["id"]: x["code"] for x in lines if x["action"] == "skipped"}
    assert skipped == {
        "corrupt": "unreadable_audio",
        "empty": "unreadable_audio",
        "silent": "silent",
        "short": "too_short",
        "long": "too_long",
        "six_channels": "bad_channels",
        "nan": "non_finite",
        "missing": "audio_not_found",
        "no_phonemes": "empty_phonemes",
        "no_text": "empty_transcript",
    }
    warned = {x["id"]: x["code"] for x in lines if x["action"] == "kept"}
    assert warned == {"clipped": "clipped", "unknown_symbols": "unknown_symbols"}
    assert all(x["path"] and x["reason"] for x in lines)
    assert "6 channels" in next(x["reason"] for x in lines if x["id"] == "six_channels")
    # resampling to 24 kHz mono
    assert kept["narrowband"].num_samples == 24000
    assert kept["stereo"].num_samples == int(1.2 * 24000)
    wave, _, meta = load_features(kept["stereo"].features)
    expected = 0.75 * tone(1.2)
    assert np.allclose(wave.numpy(), expected, atol=1e-4)  # the two channels averaged
    assert meta["channels"] == 2 and meta["orig_sample_rate"] == 24000
    assert "skipped 10" in out.report.summary() and out.total == len(bad_corpus)


def test_strict_mode_raises_naming_the_file(bad_corpus, tmp_path):
    report_path = tmp_path / "report.jsonl"
    chosen = [u for u in bad_corpus if u.id in ("good", "corrupt", "silent")]
    with pytest.raises(BadInputError, match=r"cannot decode \S+/corrupt\.wav.*\[unreadable_audio\]"):
        prepare_corpus(chosen, cache=FeatureCache(tmp_path / "c"), strict=True,
                       report_path=report_path, progress=False)  # fmt: skip
    assert report_path.exists()  # the report is written even when the run stops


def test_zero_usable_utterances_is_an_error_naming_why(tmp_path):
    write_audio(tmp_path / "a.wav", np.zeros(24000, dtype=np.float32))
    utts = [utt(tmp_path / "a.wav"), utt(tmp_path / "gone.wav")]
    with pytest.raises(
        ValueError,
        match=r"none of 2 utterances is usable.*1 silent.*1 audio_not_found|"
        r"none of 2 utterances is usable.*1 audio_not_found.*1 silent",
    ):
        prepare_corpus(utts, cache=FeatureCache(tmp_path / "c"), progress=False)


def test_cached_features_are_the_official_mel_and_keyed_by_content(tmp_path):
    d = tmp_path / "audio"
    write_audio(d / "a.wav", tone(1.3, freq=180))
    write_audio(d / "b.wav", tone(0.9, freq=260), sr=22050)
    cache = FeatureCache(tmp_path / "cache")
    first = prepare_corpus([utt(d / "a.wav"), utt(d / "b.wav")], cache=cache, progress=False)
    assert (first.cache_hits, first.cache_misses) == (0, 2)
    wave, mel, meta = load_features(first[0].features)
    ref = sf.read(d / "a.wav", dtype="float32")[0]
    assert torch.equal(wave, torch.from_numpy(ref))
    expected = log_mel(np.concatenate([np.zeros(5000, np.float32), ref, np.zeros(5000, np.float32)]))[0]
    assert torch.allclose(mel, expected, atol=1e-5)
    assert first[0].num_frames == mel.shape[1] == 1 + (len(ref) + 10000) // 300
    assert meta["num_samples"] == len(ref) == first[0].num_samples

    again = prepare_corpus([utt(d / "a.wav"), utt(d / "b.wav")], cache=cache, progress=False)
    assert (again.cache_hits, again.cache_misses) == (2, 0)
    assert [p.features for p in again] == [p.features for p in first]

    shutil.move(d / "a.wav", d / "renamed.wav")  # same bytes: still a hit
    write_audio(d / "b.wav", tone(0.9, freq=300), sr=22050)  # new bytes: recomputed
    third = prepare_corpus([utt(d / "renamed.wav"), utt(d / "b.wav")], cache=cache, progress=False)
    assert (third.cache_hits, third.cache_misses) == (1, 1)
    assert third[0].features == first[0].features and third[1].features != first[1].features

    other = FeatureCache(tmp_path / "cache", FeatureSettings(edge_padding=0))
    assert other.dir != cache.dir
    fourth = prepare_corpus([utt(d / "renamed.wav")], cache=other, progress=False)
    assert fourth.cache_misses == 1 and fourth[0].num_frames == 1 + len(ref) // 300

    # a damaged entry is recomputed, not trusted
    third[1].features.write_bytes(b"garbage")
    fifth = prepare_corpus([utt(d / "b.wav")], cache=cache, progress=False)
    assert fifth.cache_misses == 1 and load_features(fifth[0].features)[0].shape[0] > 0


def test_changed_limits_apply_to_cached_entries(tmp_path):
    write_audio(tmp_path / "a.wav", tone(1.5))
    cache = FeatureCache(tmp_path / "cache")
    assert len(prepare_corpus([utt(tmp_path / "a.wav")], cache=cache, progress=False)) == 1
    with pytest.raises(ValueError, match="too_long"):
        prepare_corpus([utt(tmp_path / "a.wav")], cache=cache, config=PrepareConfig(max_duration=1.0),
                       progress=False)  # fmt: skip


@pytest.mark.espeak
def test_plain_text_is_phonemised_with_the_front_end(tmp_path):
    from tts_adapt.text import Phonemizer

    write_audio(tmp_path / "a.wav", tone(1.0))
    out = prepare_corpus([utt(tmp_path / "a.wav", text="Hello there.", phonemes=None)],
                         cache=FeatureCache(tmp_path / "c"), progress=False)  # fmt: skip
    assert out[0].phonemes == Phonemizer()("Hello there.")
    assert "ˈ" in out[0].phonemes


def test_loud_float_audio_is_kept_exactly_and_parallel_jobs_agree(tmp_path):
    loud = 5.0 * tone(1.0)  # peak about 1.17
    write_audio(tmp_path / "loud.wav", loud, subtype="FLOAT")
    write_audio(tmp_path / "ok.wav", tone(1.1))
    utts = [utt(tmp_path / "loud.wav"), utt(tmp_path / "ok.wav")]
    out = prepare_corpus(utts, cache=FeatureCache(tmp_path / "c1"), progress=False)
    assert [p.code for p in out.report.problems] == ["clipped"]  # beyond full scale: warned, kept
    wave = load_features(out[0].features)[0]
    assert torch.equal(wave, torch.from_numpy(loud))  # stored as float, not clipped to 16 bits
    parallel = prepare_corpus(utts, cache=FeatureCache(tmp_path / "c2"), jobs=2, progress=False)
    assert [(p.id, p.num_samples, p.num_frames) for p in parallel] == [
        (p.id, p.num_samples, p.num_frames) for p in out
    ]
