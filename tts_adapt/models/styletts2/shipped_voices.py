"""Reference recordings shipped beside the base model, so ``synth`` and the demo can speak before a user
has recorded anything: a multi-speaker StyleTTS 2 needs a reference for every utterance.

They are espeak-ng recordings of voices the base model never trained on (``voices/voices.json`` says which
corpus recording each one is), so what they show is the model's zero-shot voice, not a memorised one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .default import BASE_DIR

VOICES_DIR = BASE_DIR / "voices"
VOICES_FORMAT = 1


@dataclass(frozen=True)
class ShippedVoice:
    name: str
    path: Path
    speaker: str
    accent: str
    gender: str
    text: str

    @property
    def label(self) -> str:
        """How the demo lists it: the name, then what kind of voice it is."""
        return f"{self.name} ({self.accent}, {self.gender})"


def shipped_voices(folder: str | Path = VOICES_DIR) -> dict[str, ShippedVoice]:
    """The voices in ``folder/voices.json`` by name, in file order; empty where the folder is absent."""
    folder = Path(folder)
    index = folder / "voices.json"
    if not index.is_file():
        return {}
    try:
        doc = json.loads(index.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{index}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != VOICES_FORMAT:
        raise ValueError(f'{index}: expected a JSON object with "format": {VOICES_FORMAT}')
    voices: dict[str, ShippedVoice] = {}
    for i, entry in enumerate(doc.get("voices", [])):
        missing = [k for k in ("name", "file", "speaker", "accent", "gender", "text") if k not in entry]
        if missing:
            raise ValueError(f"{index}: voices[{i}] lacks {', '.join(missing)}")
        path = folder / entry["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{index}: voices[{i}] names {entry['file']}, which is not in {folder}")
        if entry["name"] in voices:
            raise ValueError(f"{index}: the voice name {entry['name']!r} appears twice")
        voices[entry["name"]] = ShippedVoice(
            name=entry["name"],
            path=path,
            speaker=str(entry["speaker"]),
            accent=entry["accent"],
            gender=entry["gender"],
            text=entry["text"],
        )
    return voices


def resolve_reference(reference: str | None, voice: str | None) -> str:
    """The recording to take the style from: the user's ``reference``, a shipped ``voice`` by name, or the
    first shipped voice when neither is given."""
    if reference and voice:
        raise ValueError("give --reference or --voice, not both")
    if reference:
        return reference
    voices = shipped_voices()
    if voice:
        if voice not in voices:
            known = ", ".join(voices) or "none in this installation"
            raise ValueError(f"unknown voice {voice!r}; the shipped voices are: {known}")
        return str(voices[voice].path)
    if not voices:
        raise ValueError("no --reference given and this installation ships no voices; pass --reference FILE")
    return str(next(iter(voices.values())).path)
