"""What a speech engine must declare to voice a corpus: its voices, their native rate and licence,
how to find out whether it is installed, and how to speak one sentence.

An engine is looked up by name in the registry (``tts_adapt.data.engines``); the corpus builder
(``tts_adapt.data.voice_corpus``) only talks to this interface, so a new engine is one class.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...audio import SAMPLE_RATE


class EngineNotInstalled(RuntimeError):
    """An engine, or one of its voices, is missing; the message is one line naming what to install.

    A ``RuntimeError`` so that the command line prints it as its usual one-line error.
    """


@dataclass(frozen=True)
class VoiceLicense:
    """The terms of a voice (its recordings and model), recorded beside every corpus it voices."""

    name: str  # SPDX identifier where one exists, else a short name
    summary: str  # what it allows and requires, in one sentence
    source: str  # where these terms were read (package, file or model card)


@dataclass(frozen=True)
class EngineVoice:
    """One voice of an engine; it becomes one speaker of the corpus."""

    name: str  # the engine's own name for it, as given to --voice
    speaker: str  # the corpus speaker (folder) name: letters, digits and '-', no '_'
    gender: str  # "female" or "male", as the voice's documentation says
    accent: str
    sample_rate: int  # native rate of the engine's output
    license: VoiceLicense
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", self.speaker):
            # '_' separates speaker from utterance number in ids and file lists
            raise ValueError(f"speaker name {self.speaker!r} must be letters, digits and '-' only")

    def manifest(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Speech:
    """One synthesised sentence at the engine's native rate (float32 mono in [-1, 1])."""

    wave: np.ndarray
    sample_rate: int
    extra: dict = field(default_factory=dict)  # anything worth logging (e.g. a noise seed)


class Engine(ABC):
    """A text-to-speech engine that voices corpora.

    ``synthesize`` may be called from several threads at once (``--jobs``); ``seed`` is a list of
    ints identifying the corpus seed, voice and utterance, for engines that sample (output must then
    be a function of ``(text, voice, seed)``; set ``deterministic`` accordingly).
    """

    name: str = ""
    deterministic: bool = True

    @abstractmethod
    def voices(self) -> list[EngineVoice]:
        """Every voice this engine can offer, installed or not (what ``--voice`` accepts)."""

    @abstractmethod
    def check(self, voices: Sequence[EngineVoice]) -> None:
        """Raise :class:`EngineNotInstalled` naming the package to install if anything is missing."""

    @abstractmethod
    def synthesize(self, text: str, voice: EngineVoice, seed: Sequence[int]) -> Speech:
        """Speech for ``text``; a ``RuntimeError`` naming the engine and voice when it fails."""

    def version(self) -> dict:
        """Versions of the programs and packages used, for the corpus manifest."""
        return {}

    def license_files(self, voice: EngineVoice) -> list[Path]:
        """Licence texts or model cards to copy into the corpus beside the audio (if installed)."""
        return []

    def default_voices(self) -> list[EngineVoice]:
        """What ``--voice`` defaults to: the first declared voice."""
        return self.voices()[:1]

    def select(self, names: Sequence[str] | None) -> list[EngineVoice]:
        """Voices by name (``all`` for every one); an unknown name is an error listing the known ones."""
        known = {v.name: v for v in self.voices()}
        if not names:
            return self.default_voices()
        if list(names) == ["all"]:
            return list(known.values())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"--voice {', '.join(unknown)}: not a voice of engine {self.name}; "
                f"expected one of {', '.join(known)} (or all)"
            )
        chosen = [known[n] for n in dict.fromkeys(names)]
        return chosen


def find_program(program: str, install: str, path: str | None = None) -> str:
    """The executable ``program`` on ``path`` (default ``$PATH``), or a one-line install instruction."""
    exe = shutil.which(program, path=path if path is not None else os.environ.get("PATH", os.defpath))
    if exe is None:
        raise EngineNotInstalled(f"{program} is not installed: {install}")
    return exe


def to_corpus_rate(speech: Speech) -> np.ndarray:
    """Mono float32 at the corpus rate (24 kHz), resampled with soxr as the espeak-ng corpus is.

    Band-limited resampling can overshoot full scale a little; rather than clip, such an utterance is
    scaled down to peak 0.99; utterances that would not clip keep the engine's own level.
    """
    import librosa

    wave = np.asarray(speech.wave, dtype=np.float32)
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    if speech.sample_rate != SAMPLE_RATE:
        wave = librosa.resample(wave, orig_sr=speech.sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 0.99:
        wave = wave * (0.99 / peak)
    return wave.astype(np.float32)
