"""Readers for the corpus layouts the project uses: LibriTTS, VCTK 0.92, LJSpeech and a plain folder.

Each returns a sorted list of :class:`Utterance`. Transcript problems (missing or empty) are reported
to the optional :class:`SkipReport` and left out; audio problems are found later, by preparation,
which has to decode the audio anyway.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .report import SkipReport
from .utterance import Utterance, sort_utterances

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
VCTK_AUDIO_DIR = "wav48_silence_trimmed"
VCTK_TEXT_DIR = "txt"


def audio_duration(path: str | os.PathLike) -> float | None:
    """Duration from the audio header (cheap), ``None`` when the header cannot be read."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:
        return None
    if not info.samplerate or info.frames < 0:
        return None
    return info.frames / info.samplerate


def _read_transcript(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _make(
    utt_id: str, audio: Path, text_file: Path, speaker: str, report: SkipReport, durations: bool
) -> Utterance | None:
    if not text_file.exists():
        report.skip(utt_id, audio, "missing_transcript", f"no transcript: expected {text_file}")
        return None
    text = _read_transcript(text_file)
    if text is None:
        report.skip(utt_id, audio, "missing_transcript", f"transcript {text_file} is not readable UTF-8 text")
        return None
    if not text:
        report.skip(utt_id, audio, "empty_transcript", f"transcript {text_file} is empty")
        return None
    return Utterance(utt_id, audio, text, speaker, audio_duration(audio) if durations else None)


# ---------------------------------------------------------------------------------------------- LibriTTS


def is_libritts_subset(path: Path) -> bool:
    """``<speaker>/<chapter>/<id>.wav`` with ``<id>.normalized.txt`` beside it."""
    return path.is_dir() and next(path.glob("*/*/*.normalized.txt"), None) is not None


def libritts_subsets(root: Path) -> list[Path]:
    """Subset folders under a LibriTTS root, or ``[root]`` when root is itself a subset."""
    if is_libritts_subset(root):
        return [root]
    return sorted(p for p in root.iterdir() if is_libritts_subset(p)) if root.is_dir() else []


def read_libritts(
    root: str | os.PathLike,
    subsets: Iterable[str] | None = None,
    *,
    report: SkipReport | None = None,
    durations: bool = True,
) -> list[Utterance]:
    """LibriTTS: ``<root>/<subset>/<speaker>/<chapter>/<id>.wav`` + ``<id>.normalized.txt``.

    ``root`` may also be one subset folder. ``subsets`` picks subset folders by name (for example
    ``["train-clean-100"]``); a name that is not there is an error listing what is.
    """
    root = Path(root)
    report = report if report is not None else SkipReport()
    if not root.is_dir():
        raise FileNotFoundError(f"LibriTTS folder not found: {root}")
    found = libritts_subsets(root)
    if not found:
        raise ValueError(
            f"{root} does not look like LibriTTS: expected <subset>/<speaker>/<chapter>/<id>.wav with "
            f"<id>.normalized.txt (e.g. train-clean-100/19/198/19_198_000000_000000.wav)"
        )
    if subsets is not None:
        wanted = list(subsets)
        by_name = {p.name: p for p in found}
        missing = [s for s in wanted if s not in by_name]
        if missing:
            raise FileNotFoundError(
                f"LibriTTS subset(s) {', '.join(missing)} not found under {root}; "
                f"available: {', '.join(sorted(by_name)) or 'none'}"
            )
        found = [by_name[s] for s in wanted]
    out = []
    for subset in found:
        for wav in sorted(subset.glob("*/*/*.wav")):
            speaker = wav.parent.parent.name
            text_file = wav.with_name(wav.stem + ".normalized.txt")
            utt = _make(wav.stem, wav, text_file, speaker, report, durations)
            if utt:
                out.append(utt)
    return sort_utterances(out)


# ---------------------------------------------------------------------------------------------- VCTK


def vctk_root(root: Path) -> Path | None:
    """The folder holding ``wav48_silence_trimmed`` (accepts the parent of ``VCTK-Corpus-0.92`` too)."""
    if (root / VCTK_AUDIO_DIR).is_dir():
        return root
    inner = root / "VCTK-Corpus-0.92"
    if (inner / VCTK_AUDIO_DIR).is_dir():
        return inner
    return None


def read_vctk(
    root: str | os.PathLike,
    mic: str = "mic1",
    *,
    speakers: Iterable[str] | None = None,
    report: SkipReport | None = None,
    durations: bool = True,
) -> list[Utterance]:
    """VCTK 0.92: ``wav48_silence_trimmed/<spk>/<spk>_<n>_<mic>.flac`` and ``txt/<spk>/<spk>_<n>.txt``.

    Ids keep the microphone suffix (``p248_165_mic1``), as the reference experiment's file lists do.
    Speakers without transcripts (p315 in the release) are reported, not silently dropped.
    """
    if mic not in ("mic1", "mic2"):
        raise ValueError(f"VCTK mic must be 'mic1' or 'mic2', got {mic!r}")
    given = Path(root)
    base = vctk_root(given)
    if base is None:
        raise FileNotFoundError(
            f"VCTK 0.92 not found: expected {given / VCTK_AUDIO_DIR} (and {given / VCTK_TEXT_DIR})"
        )
    report = report if report is not None else SkipReport()
    wanted = set(speakers) if speakers is not None else None
    spk_dirs = sorted(p for p in (base / VCTK_AUDIO_DIR).iterdir() if p.is_dir())
    if wanted is not None:
        missing = wanted - {p.name for p in spk_dirs}
        if missing:
            raise FileNotFoundError(
                f"VCTK speaker(s) {', '.join(sorted(missing))} not found in {base / VCTK_AUDIO_DIR}"
            )
        spk_dirs = [p for p in spk_dirs if p.name in wanted]
    out = []
    for spk_dir in spk_dirs:
        for audio in sorted(
            p for p in spk_dir.iterdir() if p.suffix in AUDIO_SUFFIXES and p.stem.endswith("_" + mic)
        ):
            base_id = audio.stem[: -len(mic) - 1]
            text_file = base / VCTK_TEXT_DIR / spk_dir.name / f"{base_id}.txt"
            utt = _make(audio.stem, audio, text_file, spk_dir.name, report, durations)
            if utt:
                out.append(utt)
    return sort_utterances(out)


# ---------------------------------------------------------------------------------------------- LJSpeech


def read_ljspeech(
    root: str | os.PathLike,
    *,
    speaker: str = "LJ",
    report: SkipReport | None = None,
    durations: bool = True,
) -> list[Utterance]:
    """LJSpeech 1.1: ``metadata.csv`` lines ``id|raw text|normalised text`` and ``wavs/<id>.wav``.

    The normalised column is used when present (numbers spelled out), else the raw one.
    """
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"LJSpeech metadata not found: expected {meta}")
    report = report if report is not None else SkipReport()
    out = []
    with open(meta, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 2 or not fields[0].strip():
                report.skip(
                    f"{meta.name}:{lineno}",
                    meta,
                    "bad_line",
                    f"{meta}:{lineno}: expected 'id|text|normalised text', got {line[:80]!r}",
                )
                continue
            utt_id = fields[0].strip()
            text = (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()
            audio = root / "wavs" / f"{utt_id}.wav"
            if not text:
                report.skip(
                    utt_id, audio, "empty_transcript", f"{meta}:{lineno}: empty transcript for {utt_id}"
                )
                continue
            out.append(Utterance(utt_id, audio, text, speaker, audio_duration(audio) if durations else None))
    return sort_utterances(out)


# ---------------------------------------------------------------------------------------------- folder


def read_folder(
    root: str | os.PathLike,
    *,
    speaker: str | None = None,
    recursive: bool = False,
    report: SkipReport | None = None,
    durations: bool = True,
) -> list[Utterance]:
    """A user's own recordings: ``*.wav`` (or ``*.flac``) each with a same-name ``*.txt`` transcript.

    The speaker defaults to the folder's name. With ``recursive`` sub-folders are searched too and
    ids are the relative paths without extension.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    report = report if report is not None else SkipReport()
    speaker = speaker or root.resolve().name
    pattern = "**/*" if recursive else "*"
    audio_files = sorted(p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    out = []
    for audio in audio_files:
        rel = audio.relative_to(root).with_suffix("")
        utt = _make(rel.as_posix(), audio, audio.with_suffix(".txt"), speaker, report, durations)
        if utt:
            out.append(utt)
    return sort_utterances(out)


def is_plain_folder(root: Path) -> bool:
    return root.is_dir() and any(
        p.suffix.lower() in AUDIO_SUFFIXES and p.with_suffix(".txt").exists() for p in root.iterdir()
    )
