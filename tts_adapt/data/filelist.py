"""StyleTTS 2 file lists: ``relative/path.wav|text|speaker``, one utterance a line.

The official training code reads these, and the reference experiment's splits are published in this
form. The text field is IPA in training lists and plain English in some evaluation lists; the speaker
field may be missing (the official loader then uses speaker 0). Here a missing speaker is taken from
the file name's prefix before the first underscore (``p225_024_mic1.wav`` -> ``p225``), which is what
those evaluation lists mean, and ``"0"`` when the name has no underscore.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..text.symbols import LETTERS_IPA
from ..utils.io import write_text
from .readers import AUDIO_SUFFIXES, audio_duration
from .report import SkipReport
from .utterance import Utterance

log = logging.getLogger(__name__)

# Characters that occur in espeak IPA output but never in plain English text.
_IPA_ONLY = frozenset(c for c in LETTERS_IPA if not c.isascii())


def looks_like_ipa(text: str) -> bool:
    return any(c in _IPA_ONLY for c in text)


def resolve_audio(audio_root: Path, rel: str, speaker: str | None = None) -> Path:
    """Find ``rel`` under ``audio_root``, also trying a speaker sub-folder and ``.flac``/``.wav`` twins.

    This lets the reference lists (flat ``p248_165_mic1.wav`` names) point straight at VCTK 0.92's
    ``wav48_silence_trimmed/p248/p248_165_mic1.flac``. The first existing candidate wins; if none
    exists the plain join is returned and preparation reports it as missing.
    """
    direct = audio_root / rel
    if direct.exists():
        return direct
    rel_path = Path(rel)
    folders = [rel_path.parent]
    prefix = rel_path.stem.split("_")[0]
    for name in (speaker, prefix):
        if name and rel_path.parent == Path("."):
            folders.append(Path(name))
    for folder in folders:
        for suffix in (rel_path.suffix, *AUDIO_SUFFIXES):
            candidate = audio_root / folder / (rel_path.stem + suffix)
            if candidate.exists():
                return candidate
    return direct


def _speaker_from_name(rel: str) -> str:
    stem = Path(rel).stem
    return stem.split("_")[0] if "_" in stem else "0"


def read_filelist(
    path: str | os.PathLike,
    audio_root: str | os.PathLike | None = None,
    *,
    phonemes: bool | None = None,
    report: SkipReport | None = None,
    durations: bool = True,
    resolve: bool = True,
) -> list[Utterance]:
    """Read a ``path|text[|speaker]`` list; audio paths are relative to ``audio_root``.

    ``audio_root`` defaults to the list's folder. ``phonemes=None`` decides per file whether the text
    field is IPA (most lines contain IPA-only characters); IPA text is kept verbatim (including any
    trailing space, as the official loader does) in both ``text`` and ``phonemes``. Lines keep their
    file order, which is what the reference splits mean by "the first N".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file list not found: {path}")
    report = report if report is not None else SkipReport()
    root = Path(audio_root) if audio_root is not None else path.parent
    rows: list[tuple[int, list[str]]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split("|")
            if len(fields) not in (2, 3) or not fields[0].strip():
                report.skip(
                    f"{path.name}:{lineno}",
                    path,
                    "bad_line",
                    f"{path}:{lineno}: expected 'path|text|speaker' or 'path|text', got {line[:80]!r}",
                )
                continue
            rows.append((lineno, fields))
    if phonemes is None:
        phonemes = sum(looks_like_ipa(f[1]) for _, f in rows) * 2 > len(rows)
    out = []
    for lineno, fields in rows:
        rel, text = fields[0].strip(), fields[1]
        speaker = fields[2].strip() if len(fields) == 3 and fields[2].strip() else _speaker_from_name(rel)
        audio = resolve_audio(root, rel, speaker) if resolve else root / rel
        utt_id = Path(rel).stem
        if not text.strip():
            report.skip(utt_id, audio, "empty_transcript", f"{path}:{lineno}: empty text for {rel}")
            continue
        text = text if phonemes else text.strip()
        out.append(
            Utterance(
                utt_id,
                audio,
                text,
                speaker,
                audio_duration(audio) if durations else None,
                text if phonemes else None,
            )
        )
    return out


def write_filelist(
    utterances,
    path: str | os.PathLike,
    audio_root: str | os.PathLike | None = None,
    use_phonemes: bool = True,
) -> None:
    """Write a StyleTTS 2 list (atomically).

    Paths are made relative to ``audio_root`` (default: the list's folder, which is where
    :func:`read_filelist` looks) when the audio lies below it, and absolute otherwise, so the list reads
    back the same from any working directory.
    """
    lines = []
    root = Path(audio_root if audio_root is not None else Path(path).parent).resolve()
    for u in utterances:
        audio = Path(u.audio_path).resolve()
        if audio.is_relative_to(root):
            audio = audio.relative_to(root)
        text = u.phonemes if use_phonemes and u.phonemes is not None else u.text
        if "|" in text or "\n" in text or "|" in u.speaker:
            raise ValueError(
                f"utterance {u.id}: text or speaker contains '|' or a newline, which a file list cannot hold"
            )
        lines.append(f"{audio.as_posix()}|{text}|{u.speaker}\n")
    write_text(path, "".join(lines))
