"""One entry point for every ``--data`` option: a corpus folder (layout detected) or a file list."""

from __future__ import annotations

import os
from pathlib import Path

from .filelist import read_filelist
from .readers import (
    is_plain_folder,
    libritts_subsets,
    read_folder,
    read_libritts,
    read_ljspeech,
    read_vctk,
    vctk_root,
)
from .report import SkipReport, require_usable
from .utterance import Utterance

LAYOUTS = ("libritts", "vctk", "ljspeech", "folder", "filelist")
ROOT_SEPARATOR = "::"


def detect_layout(path: str | os.PathLike) -> str:
    """Name of the layout at ``path`` (one of :data:`LAYOUTS`), or a ValueError describing them."""
    path = Path(path)
    if path.is_file():
        return "filelist"
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    if (path / "metadata.csv").is_file() and (path / "wavs").is_dir():
        return "ljspeech"
    if vctk_root(path) is not None:
        return "vctk"
    if libritts_subsets(path):
        return "libritts"
    if is_plain_folder(path):
        return "folder"
    raise ValueError(
        f"cannot tell what corpus {path} is. Expected one of: LibriTTS "
        f"(<subset>/<speaker>/<chapter>/<id>.wav + .normalized.txt), VCTK 0.92 "
        f"(wav48_silence_trimmed/ + txt/), LJSpeech (metadata.csv + wavs/), "
        f"a folder of *.wav with same-name *.txt, or a StyleTTS 2 file list (path|text|speaker)"
    )


def load_corpus(
    spec: str | os.PathLike,
    *,
    audio_root: str | os.PathLike | None = None,
    layout: str | None = None,
    report: SkipReport | None = None,
    durations: bool = True,
    **options,
) -> list[Utterance]:
    """Read any supported corpus.

    ``spec`` is a folder (LibriTTS root or subset, VCTK 0.92, LJSpeech, or a plain folder) or a file
    list. A file list's audio root is ``audio_root``, else the part after ``::`` in ``spec``
    (``splits/train_p248.txt::/data/vctk24``), else the list's own folder. ``layout`` forces a reader;
    extra ``options`` go to it (``subsets=`` for LibriTTS, ``mic=`` for VCTK, ``speaker=`` for a folder).
    Raises if nothing usable is found.
    """
    text = os.fspath(spec)
    path = Path(text)
    if not path.exists() and ROOT_SEPARATOR in text:
        list_part, root_part = text.split(ROOT_SEPARATOR, 1)
        path = Path(list_part)
        audio_root = audio_root or root_part
    layout = layout or detect_layout(path)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown corpus layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    report = report if report is not None else SkipReport()
    kw = dict(report=report, durations=durations, **options)
    if layout == "filelist":
        utts = read_filelist(path, audio_root, **kw)
    elif layout == "libritts":
        utts = read_libritts(path, **kw)
    elif layout == "vctk":
        utts = read_vctk(path, **kw)
    elif layout == "ljspeech":
        utts = read_ljspeech(path, **kw)
    else:
        utts = read_folder(path, **kw)
    require_usable(len(utts), len(utts) + len(report.skipped), report, f"corpus {text}")
    return utts
