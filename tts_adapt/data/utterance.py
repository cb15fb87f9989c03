"""The one record every corpus reader produces, so that nothing downstream cares where data came from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Utterance:
    """One recording and its transcript.

    ``duration`` is in seconds, read from the audio header (``None`` when the header could not be read;
    preparation then reports the file). ``phonemes`` is set only when the source already carries IPA
    (StyleTTS 2 filelists); otherwise preparation phonemises ``text``.
    """

    id: str
    audio_path: Path
    text: str
    speaker: str
    duration: float | None = None
    phonemes: str | None = None

    def replace(self, **changes) -> Utterance:
        return dataclasses.replace(self, **changes)


def sort_utterances(utts) -> list[Utterance]:
    """The canonical order: by speaker, then id, then path (stable across file systems)."""
    return sorted(utts, key=lambda u: (u.speaker, u.id, str(u.audio_path)))
