"""Clip checks against signals whose answer is known by construction, and the zip reader's safety."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from tts_adapt.own_voice.clips import (
    CLIPPED_FRACTION,
    MIN_SNR_DB,
    MIN_TOTAL_SECONDS,
    ClipReport,
    check_language,
    check_wave,
    expand_uploads,
    frame_levels_db,
    safe_name,
    signal_to_noise_db,
    total_problem,
)

SR = 24000


def speechlike(seconds: float, rng: np.random.Generator, level: float = 0.3) -> np.ndarray:
    """Bursts of a 150 Hz harmonic tone (syllables) with pauses: loud frames and quiet ones."""
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    gate = (np.sin(2 * np.pi * 2.0 * t) > 0).astype(np.float64)  # 250 ms on, 250 ms off
    wave = level * tone * gate / np.max(np.abs(tone))
    return wave.astype(np.float32)


def test_frame_levels_of_a_full_scale_sine_are_minus_3_dbfs():
    t = np.arange(SR) / SR
    levels = frame_levels_db(np.sin(2 * np.pi * 1000 * t), SR)  # RMS of a sine: 1/sqrt(2)
    assert levels == pytest.approx(np.full(len(levels), 20 * np.log10(1 / np.sqrt(2))), abs=0.01)


def test_snr_is_the_level_gap_between_speech_and_pauses():
    rng = np.random.default_rng(0)
    speech = speechlike(4.0, rng)
    noise_rms = 0.001
    noisy = speech + rng.normal(0, noise_rms, len(speech)).astype(np.float32)
    # loud frames: the tone's RMS; quiet frames: the noise's RMS (closed form, frames all on or off)
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    tone_rms = 0.3 * np.sqrt(np.mean((tone / np.max(np.abs(tone))) ** 2))
    expected = 20 * np.log10(tone_rms / noise_rms)
    assert signal_to_noise_db(frame_levels_db(noisy, SR)) == pytest.approx(expected, abs=1.0)


def test_a_clean_speechlike_clip_is_accepted():
    report = check_wave("ok.wav", speechlike(3.0, np.random.default_rng(1)), SR)
    assert report.ok, report.problems
    assert report.seconds == 3.0 and report.speech_seconds == pytest.approx(1.5, abs=0.1)


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("short.wav", lambda rng: speechlike(0.6, rng), "too short: 0.6 s"),
        ("long.wav", lambda rng: speechlike(31.0, rng), "too long: 31 s"),
        ("silent.wav", lambda rng: np.zeros(3 * SR, np.float32), "silent"),
        ("quiet.wav", lambda rng: speechlike(3.0, rng, level=0.001), "silent"),
        ("clipped.wav", lambda rng: np.clip(speechlike(3.0, rng, level=3.0), -1, 1), "clipped"),
        (
            "noisy.wav",
            lambda rng: speechlike(3.0, rng) + rng.normal(0, 0.05, 3 * SR).astype(np.float32),
            "noisy",
        ),
    ],
)
def test_each_fault_gets_its_message(name, make, problem):
    report = check_wave(name, make(np.random.default_rng(2)), SR)
    assert any(p.startswith(problem) for p in report.problems), report.problems


def test_clipping_threshold_counts_full_scale_samples():
    wave = speechlike(3.0, np.random.default_rng(3))
    n = len(wave)
    under = wave.copy()
    under[: int(CLIPPED_FRACTION * n * 0.5)] = 1.0  # half the allowed share at full scale
    over = wave.copy()
    over[: int(CLIPPED_FRACTION * n * 2)] = 1.0
    assert not any(p.startswith("clipped") for p in check_wave("a", under, SR).problems)
    assert any(p.startswith("clipped") for p in check_wave("b", over, SR).problems)


def test_noise_threshold_is_min_snr():
    rng = np.random.default_rng(4)
    speech = speechlike(4.0, rng)
    levels = frame_levels_db(speech, SR)
    loud = np.percentile(levels, 95)
    for margin, refused in ((-5.0, True), (5.0, False)):
        noise_rms = 10 ** ((loud - MIN_SNR_DB - margin) / 20)
        wave = speech + rng.normal(0, noise_rms, len(speech)).astype(np.float32)
        report = check_wave("n", wave, SR)
        assert any(p.startswith("noisy") for p in report.problems) == refused, (margin, report.snr_db)


def test_language_refused_only_when_whisper_is_confident():
    for language, prob, refused in (("fr", 0.9, True), ("fr", 0.3, False), ("en", 0.99, False)):
        report = ClipReport("x.wav", 3.0)
        check_language(report, language, prob)
        assert (not report.ok) == refused


def test_total_minimum():
    short = [ClipReport(f"{k}.wav", 5.0) for k in range(int(MIN_TOTAL_SECONDS // 5) - 1)]
    assert "at least 30 s is needed" in total_problem(short)
    assert total_problem(short + [ClipReport("more.wav", 5.0)]) is None
    refused = ClipReport("bad.wav", 100.0, problems=["silent"])
    assert "at least" in total_problem(short + [refused])  # refused clips do not count


def test_safe_names_stay_in_their_folder_and_do_not_collide():
    used: set[str] = set()
    names = [safe_name(n, used) for n in ("../../etc/passwd.wav", "a b.wav", "a_b.wav", "")]
    assert names == ["passwd", "a_b", "a_b_2", "clip"]


def test_zip_members_are_read_by_name_only(tmp_path):
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil.wav", b"RIFF")
        z.writestr("take/one.wav", b"RIFF")
        z.writestr("take/one.txt", "Hello there.\n")
        z.writestr("notes.pdf", b"%PDF")
    found, skipped = expand_uploads([archive], tmp_path / "unpacked")
    written = sorted(p.name for p in (tmp_path / "unpacked").iterdir())
    assert written == ["evil.wav", "one.wav"]  # nothing outside the folder
    assert not (tmp_path.parent / "evil.wav").exists()
    texts = {shown.split(":")[1]: text for shown, _, text in found}
    assert texts == {"evil.wav": None, "one.wav": "Hello there."}
    assert skipped == ["clips.zip: notes.pdf is not audio"]


def test_non_audio_uploads_are_named(tmp_path):
    note = tmp_path / "notes.txt"
    note.write_text("words")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    found, skipped = expand_uploads([note, broken], tmp_path / "unpacked")
    assert found == []
    assert (
        skipped[0].startswith("notes.txt: not audio")
        and skipped[1] == "broken.zip: not a readable zip archive"
    )


def test_a_short_clip_is_short_not_also_silent():
    report = check_wave("short.wav", speechlike(0.6, np.random.default_rng(5)), SR)
    assert len(report.problems) == 1 and report.problems[0].startswith("too short")
