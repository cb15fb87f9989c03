"""From uploaded files to checked, transcribed clips, and from those to the corpus folder ``adapt`` reads.

Each clip is decoded once to the model's rate and kept as a 16-bit WAV beside the job, so the corpus
written after the person corrects the transcripts is exactly what was checked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..utils.io import atomic_path, write_json, write_text
from .clips import ClipReport, check_language, check_wave, expand_uploads, safe_name, total_problem

log = logging.getLogger(__name__)

CLIPS_FILE = "clips.json"


class Whisper:
    """Our Whisper backend, asked for the transcript and the language in one pass (language detection
    left on: a clip whose language is not English is refused rather than transcribed as English)."""

    def __init__(self, backend: str | None = None, device: str = "cpu") -> None:
        from ..evaluation.asr import FasterWhisperTranscriber, get_transcriber

        self.transcriber = get_transcriber(backend, device=device)
        self.detects_language = isinstance(self.transcriber, FasterWhisperTranscriber)

    def listen(self, wave16k: np.ndarray) -> tuple[str, str | None, float | None]:
        """``(transcript, language, probability)`` of a 16 kHz clip."""
        if not self.detects_language:
            return self.transcriber.transcribe_waves([wave16k])[0], None, None
        from ..evaluation.asr import FASTER_WHISPER_DECODE

        settings = {**FASTER_WHISPER_DECODE, "language": None}
        segments, info = self.transcriber.model.transcribe(np.asarray(wave16k, np.float32), **settings)
        text = " ".join(s.text.strip() for s in segments).strip()
        return text, info.language, float(info.language_probability)


def take_clips(
    uploads: Sequence[str | os.PathLike],
    folder: str | os.PathLike,
    whisper: Whisper | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[ClipReport], list[str]]:
    """Decode, check and transcribe ``uploads`` into ``folder/clips/``; returns the reports (accepted and
    refused, in upload order) and messages about files that were not audio at all.

    Saved as ``folder/clips.json`` so a reloaded page shows the same table.
    """
    import librosa
    import soundfile as sf

    from ..audio import SAMPLE_RATE, load_audio

    folder = Path(folder)
    clips_dir = folder / "clips"
    found, skipped = expand_uploads(list(uploads), folder / "unpacked")
    clips_dir.mkdir(parents=True, exist_ok=True)
    used = {p.stem for p in clips_dir.glob("*.wav")}
    reports = []
    for k, (shown, path, text) in enumerate(found):
        if progress is not None:
            progress(k, len(found), shown)
        try:
            wave = load_audio(path, SAMPLE_RATE)
        except (ValueError, FileNotFoundError) as e:
            reason = str(e.__cause__ or e).split("\n")[0][:200]
            skipped.append(f"{shown}: not audio this can read ({reason})")
            continue
        report = check_wave(shown, wave, SAMPLE_RATE)
        stem = safe_name(shown, used)
        if report.ok and whisper is not None:
            heard, language, prob = whisper.listen(
                librosa.resample(wave, orig_sr=SAMPLE_RATE, target_sr=16000)
            )
            check_language(report, language, prob)
            report.text = text if text is not None else heard
        elif text is not None:
            report.text = text
        if report.ok:
            with atomic_path(clips_dir / f"{stem}.wav", suffix=".wav") as tmp:
                sf.write(tmp, np.clip(wave, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")
        report.name = shown
        reports.append((stem, report))
    if progress is not None:
        progress(len(found), len(found), "")
    saved = load_clips(folder) + [{"stem": s, **r.to_dict()} for s, r in reports]
    write_json(folder / CLIPS_FILE, saved)
    return [r for _, r in reports], skipped


def load_clips(folder: str | os.PathLike) -> list[dict]:
    """The clip rows saved by :func:`take_clips` (empty before any upload)."""
    import json

    path = Path(folder) / CLIPS_FILE
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def clip_summary(rows: list[dict]) -> tuple[float, int, str | None]:
    """``(accepted seconds, accepted clips, what is wrong with them together or None)``."""
    reports = [ClipReport(**{k: v for k, v in r.items() if k != "stem"}) for r in rows]
    accepted = [r for r in reports if r.ok]
    return sum(r.seconds for r in accepted), len(accepted), total_problem(reports)


def write_corpus(folder: str | os.PathLike, voice_name: str, texts: dict[str, str] | None = None) -> Path:
    """The accepted clips as a plain corpus folder ``folder/voice/<voice_name>/`` (``*.wav`` with same-name
    ``*.txt``): what ``adapt --data`` reads, the speaker named by the folder. ``texts`` (stem -> text)
    replaces Whisper's transcripts with the person's corrections; a clip left without text is an error."""
    import shutil

    folder = Path(folder)
    rows = [r for r in load_clips(folder) if not r["problems"]]
    if not rows:
        raise ValueError("no accepted clip: upload or record some first")
    texts = texts or {}
    corpus = folder / "voice" / voice_name
    if corpus.exists():
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    empty = []
    for row in rows:
        text = " ".join(str(texts.get(row["stem"], row["text"]) or "").split())
        if not text:
            empty.append(row["name"])
            continue
        shutil.copyfile(folder / "clips" / f"{row['stem']}.wav", corpus / f"{row['stem']}.wav")
        write_text(corpus / f"{row['stem']}.txt", text + "\n")
    if empty:
        raise ValueError(f"type what is said in {', '.join(empty)} (its text is empty)")
    return corpus
