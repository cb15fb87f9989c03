"""A person's own recordings, checked and turned into a corpus folder that ``adapt`` reads.

The checks say, per clip, what would make adaptation learn the wrong thing: too little speech to learn a
voice from, digital clipping (the model learns the distortion), a noise floor close to the speech
(the model learns the room), silence, or another language (Kokoro's English phonemizer would read the
transcript with the wrong sounds). The thresholds are deliberately loose: a phone recording in a quiet
room passes; a recording the model would imitate badly does not.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MIN_CLIP_SECONDS = 1.0
MAX_CLIP_SECONDS = 30.0  # adaptation crops; longer clips only cost alignment time (split them)
MIN_SPEECH_SECONDS = 0.5  # of frames above the noise floor
MIN_TOTAL_SECONDS = 30.0  # below this the voice pack learns little and LoRA overfits a few sentences
GOOD_TOTAL_SECONDS = 120.0
CLIPPED_FRACTION = 1e-3  # of samples at full scale
CLIP_LEVEL = 0.999
SILENT_PEAK = 0.005  # -46 dBFS
MIN_SNR_DB = 15.0
OTHER_LANGUAGE_PROB = 0.5
MAX_UPLOAD_BYTES = 200_000_000  # one file, or a zip's members together
MAX_CLIPS = 500
FRAME_SECONDS = 0.02


@dataclass
class ClipReport:
    """One clip's facts and what, if anything, is wrong with it (``problems`` empty: accepted)."""

    name: str
    seconds: float
    speech_seconds: float = 0.0
    peak: float = 0.0
    clipped_fraction: float = 0.0
    snr_db: float | None = None
    language: str | None = None
    language_prob: float | None = None
    text: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return asdict(self)


def frame_levels_db(wave: np.ndarray, sr: int) -> np.ndarray:
    """RMS level of consecutive 20 ms frames in dBFS."""
    n = max(1, int(round(FRAME_SECONDS * sr)))
    frames = len(wave) // n
    if frames == 0:
        return np.full(1, -120.0)
    blocks = wave[: frames * n].reshape(frames, n).astype(np.float64)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def signal_to_noise_db(levels: np.ndarray) -> float:
    """Loud speech frames over the noise floor: the 95th against the 10th percentile of frame levels.

    A clip of continuous speech with no pause has no floor to measure and scores low; the message
    says so (leave a short pause before and after speaking).
    """
    return float(np.percentile(levels, 95) - np.percentile(levels, 10))


def check_wave(name: str, wave: np.ndarray, sr: int) -> ClipReport:
    """The level checks of one decoded clip (mono float in [-1, 1])."""
    wave = np.asarray(wave, dtype=np.float32)
    seconds = len(wave) / sr
    report = ClipReport(name=name, seconds=round(seconds, 2))
    if len(wave) == 0:
        report.problems.append("empty: the file holds no audio")
        return report
    report.peak = float(np.max(np.abs(wave)))
    report.clipped_fraction = float(np.mean(np.abs(wave) >= CLIP_LEVEL))
    levels = frame_levels_db(wave, sr)
    loud = levels > max(float(np.max(levels)) - 35.0, -55.0)
    report.speech_seconds = round(float(np.sum(loud)) * FRAME_SECONDS, 2)
    report.snr_db = round(signal_to_noise_db(levels), 1)
    if seconds < MIN_CLIP_SECONDS:
        report.problems.append(f"too short: {seconds:.1f} s (a clip needs at least {MIN_CLIP_SECONDS:.0f} s)")
    elif seconds > MAX_CLIP_SECONDS:
        report.problems.append(
            f"too long: {seconds:.0f} s (at most {MAX_CLIP_SECONDS:.0f} s a clip: split it at sentence ends)"
        )
    too_little = report.speech_seconds < MIN_SPEECH_SECONDS and seconds >= MIN_CLIP_SECONDS
    if report.peak < SILENT_PEAK or too_little:
        report.problems.append(
            f"silent: peak {20 * np.log10(max(report.peak, 1e-6)):.0f} dBFS, "
            f"{report.speech_seconds:.1f} s of sound (is the microphone muted?)"
        )
        return report
    if report.clipped_fraction > CLIPPED_FRACTION:
        report.problems.append(
            f"clipped: {100 * report.clipped_fraction:.1f} % of samples at full scale (record with lower "
            "input gain)"
        )
    if report.snr_db < MIN_SNR_DB:
        report.problems.append(
            f"noisy: speech only {report.snr_db:.0f} dB above the background (at least {MIN_SNR_DB:.0f} dB; "
            "record in a quieter room, with a short pause before and after speaking)"
        )
    return report


def check_language(report: ClipReport, language: str | None, probability: float | None) -> None:
    """Add the "another language" problem when Whisper is confident the clip is not English."""
    report.language, report.language_prob = language, probability
    if language and language != "en" and (probability or 0.0) >= OTHER_LANGUAGE_PROB:
        report.problems.append(
            f"another language: Whisper hears {language} ({100 * probability:.0f} %); the voice is learned "
            "from English speech (Kokoro's English phonemizer reads the transcripts)"
        )


def total_problem(reports: list[ClipReport]) -> str | None:
    """What is wrong with the accepted clips together, or None."""
    accepted = [r for r in reports if r.ok]
    total = sum(r.seconds for r in accepted)
    if not accepted:
        return "no clip was accepted: see each clip's message"
    if total < MIN_TOTAL_SECONDS:
        return (
            f"{total:.0f} s of accepted speech in {len(accepted)} clip(s); at least "
            f"{MIN_TOTAL_SECONDS:.0f} s is needed (a few minutes makes a closer voice)"
        )
    return None


def safe_name(name: str, used: set[str]) -> str:
    """A file stem that cannot leave its folder or collide with one already used."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_")[:60] or "clip"
    candidate, k = stem, 2
    while candidate in used:
        candidate, k = f"{stem}_{k}", k + 1
    used.add(candidate)
    return candidate


def expand_uploads(
    paths: list[str | os.PathLike], folder: Path
) -> tuple[list[tuple[str, Path, str | None]], list[str]]:
    """Uploaded files (audio, or zips of audio with optional same-name ``.txt`` transcripts) as
    ``(display name, audio path, transcript or None)``, and messages for what was skipped.

    Zip members are read by name only (no path is ever joined from an archive), within size limits.
    """
    found: list[tuple[str, Path, str | None]] = []
    skipped: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for raw in paths:
        path = Path(raw)
        shown = path.name
        if path.suffix.lower() == ".zip":
            try:
                found += _from_zip(path, folder, used, skipped)
            except zipfile.BadZipFile:
                skipped.append(f"{shown}: not a readable zip archive")
            continue
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            skipped.append(f"{shown}: not audio (upload WAV, FLAC, OGG or MP3 clips, or a zip of them)")
            continue
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            size = path.stat().st_size / 1e6
            skipped.append(f"{shown}: {size:.0f} MB, more than {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
            continue
        found.append((shown, path, None))
    if len(found) > MAX_CLIPS:
        skipped.append(f"{len(found) - MAX_CLIPS} clips beyond the first {MAX_CLIPS} were left out")
        found = found[:MAX_CLIPS]
    return found, skipped


def _from_zip(
    path: Path, folder: Path, used: set[str], skipped: list[str]
) -> list[tuple[str, Path, str | None]]:
    out = []
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > MAX_UPLOAD_BYTES:
            limit = MAX_UPLOAD_BYTES / 1e6
            skipped.append(f"{path.name}: {total / 1e6:.0f} MB unpacked, more than {limit:.0f} MB")
            return []
        texts = {
            Path(m.filename).with_suffix("").as_posix(): m
            for m in members
            if m.filename.lower().endswith(".txt")
        }
        for m in sorted(members, key=lambda m: m.filename):
            suffix = Path(m.filename).suffix.lower()
            if suffix == ".txt" or Path(m.filename).name.startswith("."):
                continue
            if suffix not in AUDIO_SUFFIXES:
                skipped.append(f"{path.name}: {m.filename} is not audio")
                continue
            target = folder / f"{safe_name(m.filename, used)}{suffix}"
            target.write_bytes(archive.read(m))
            text_member = texts.get(Path(m.filename).with_suffix("").as_posix())
            text = archive.read(text_member).decode("utf-8", "replace").strip() if text_member else None
            out.append((f"{path.name}:{Path(m.filename).name}", target, text))
    if not out:
        skipped.append(f"{path.name}: no audio inside")
    return out
