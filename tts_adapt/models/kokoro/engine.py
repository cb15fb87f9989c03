"""Kokoro-82M as a corpus engine (``make-corpus --engine kokoro``): its 28 English voices, or all.

Samples of the model itself: a corpus of them is Kokoro's "pre-training data" for the curvature and
the held-out loss (its Fisher is the model's own). Each utterance is seeded from the corpus seed, voice
and utterance number, so a rerun completes a half-made corpus with the same samples.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from ...data.engines.base import Engine, EngineNotInstalled, EngineVoice, Speech, VoiceLicense
from ..styletts2.config import KOKORO_VOICES

LICENSE = VoiceLicense(
    name="Apache-2.0",
    summary="use, modify and redistribute, commercially too, keeping the licence and notices",
    source="hexgrad/Kokoro-82M (weights and voice packs); tts_adapt/assets/kokoro/NOTICE.md",
)
ACCENTS = {"a": "US English", "b": "British English"}
GENDERS = {"f": "female", "m": "male"}


def kokoro_voices() -> list[EngineVoice]:
    """One corpus speaker per shipped English voice pack (``af_heart`` -> speaker ``kokoro-af-heart``)."""
    from ..styletts2.voice_packs import read_bundle

    out = []
    for name in sorted(read_bundle(KOKORO_VOICES)):
        accent, gender = ACCENTS[name[0]], GENDERS[name[1]]
        out.append(
            EngineVoice(
                name, "kokoro-" + name.replace("_", "-"), gender, accent, 24000, LICENSE, "Kokoro-82M v1.0"
            )
        )
    return out


class KokoroEngine(Engine):
    name = "kokoro"
    deterministic = True

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def voices(self) -> list[EngineVoice]:
        return kokoro_voices()

    def default_voices(self) -> list[EngineVoice]:
        return [v for v in self.voices() if v.name == "af_heart"]

    def check(self, voices: Sequence[EngineVoice]) -> None:
        from . import INSTALL_HINT, parts_installed

        if not parts_installed():
            raise EngineNotInstalled(f"Kokoro-82M's weights are not installed: {INSTALL_HINT}")

    def model(self):
        with self._lock:
            if self._model is None:
                from ..styletts2 import load_official
                from . import kokoro_paths

                self._model = load_official(*kokoro_paths()).eval()
            return self._model

    def synthesize(self, text: str, voice: EngineVoice, seed: Sequence[int]) -> Speech:
        model = self.model()
        key = hashlib.sha256(",".join(map(str, seed)).encode()).digest()
        utterance_seed = int.from_bytes(key[:4], "little")
        with self._lock:  # one synthesis at a time: torch already uses every core
            wave, sr = model.synthesize(text, reference=voice.name, seed=utterance_seed)
        return Speech(wave, sr, {"seed": utterance_seed})

    def version(self) -> dict:
        from .weights import INT8_ONNX

        return {"kokoro-weights": f"int8 ONNX {INT8_ONNX.sha256[:12]}, dequantized"}
