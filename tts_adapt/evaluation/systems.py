"""Systems under test: anything that turns (text, reference audio, seed) into a waveform.

A system is built from a spec string through a small registry, so trained adapters can be plugged in
later without touching the protocol:

* ``espeak:VOICE[:pitch=P,speed=S]``: the espeak-ng program (a real, if robotic, baseline; it
  ignores the reference, so it has no zero-shot ability at all);
* ``styletts2:default[:options]``: the shipped base model (:mod:`tts_adapt.models.styletts2.default`);
* ``styletts2:CHECKPOINT:CONFIG[:adapter=DIR,alpha=0.3,beta=0.7,diffusion_steps=5,embedding_scale=1.0]``
  (and ``voice=NAME`` for a voice-pack checkpoint): an official-format StyleTTS 2 checkpoint through
  ``tts_adapt.models.styletts2.load_official``, optionally with a LoRA adapter folder
  (``tts_adapt.adapters.load_adapted``) on top;
* ``adapted:ADAPTED_DIR[:BASE_CHECKPOINT][:alpha=..,...,voice=NAME]``: a folder written by ``tts-adapt
  adapt`` (any method), with method, λ and trainable-parameter count read from its manifest for the report;
* ``kokoro[:voice=NAME]``: Kokoro-82M from its weight packages.

A voice-pack model (Kokoro, or a folder adapted from it) has no style encoder: it cannot speak in the
voice of a reference recording. Handed a recording, it speaks its own voice instead (``voice=``, else
the model's default: the learned voice of an adapted folder, ``af_heart`` for Kokoro); handed a voice
name, it speaks that voice (the stock-voice measures, :mod:`.stock_voices`).

``register_system(kind, factory)`` adds a kind; ``make_system(spec, name=...)`` builds one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

Reference = str | Path | np.ndarray


@runtime_checkable
class Synthesizer(Protocol):
    """What the protocol needs from a system: a name and ``synthesize -> (wave float32 [n], sample_rate)``."""

    name: str

    def synthesize(self, text: str, reference: Reference, seed: int) -> tuple[np.ndarray, int]: ...


def _parse_options(text: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"system option {part!r} is not key=value")
        k, v = part.split("=", 1)
        opts[k.strip()] = v.strip()
    return opts


def espeak_synthesize(
    text: str, voice: str = "en-us", pitch: int = 50, speed: int = 175
) -> tuple[np.ndarray, int]:
    """Run ``espeak-ng`` and return its 22.05 kHz mono waveform."""
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    proc = subprocess.run(
        [exe, "-v", voice, "-p", str(int(pitch)), "-s", str(int(speed)), "--stdout", text],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(
            f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}"
        )
    wave, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    return wave, int(sr)


class EspeakSystem:
    """espeak-ng as a synthesiser. Deterministic; ``reference`` and ``seed`` are ignored by design."""

    def __init__(
        self, voice: str = "en-us", pitch: int = 50, speed: int = 175, name: str | None = None
    ) -> None:
        self.voice = voice
        self.pitch = int(pitch)
        self.speed = int(speed)
        self.name = name or f"espeak-{voice}"
        self.info: dict[str, Any] = {"method": "espeak-ng", "trainable_params": 0}

    def synthesize(self, text: str, reference: Reference, seed: int) -> tuple[np.ndarray, int]:
        return espeak_synthesize(text, self.voice, self.pitch, self.speed)


class StyleTTS2System:
    """Adapter around our StyleTTS 2 model (``model.synthesize(text, reference=..., ..., seed=...)``).

    ``voice``: for a voice-pack model, the voice it speaks when the protocol hands it a recording
    (default: the model's own default voice); refused for a model with style encoders.
    """

    def __init__(
        self,
        model: Any,
        name: str = "styletts2",
        alpha: float = 0.3,
        beta: float = 0.7,
        diffusion_steps: int = 5,
        embedding_scale: float = 1.0,
        info: dict[str, Any] | None = None,
        voice: str | None = None,
    ) -> None:
        self.model = model
        self.name = name
        if voice is not None:
            if not self.uses_voice_packs:
                raise ValueError(
                    f"system {name}: voice={voice} applies to voice-pack models (Kokoro) only; this model "
                    "speaks in the voice of each case's reference recording"
                )
            if voice not in self.voice_names():
                known = ", ".join(self.voice_names())
                raise ValueError(f"system {name}: no voice {voice!r} in this model (voices: {known})")
        self.voice = voice
        self.settings = {
            "alpha": float(alpha),
            "beta": float(beta),
            "diffusion_steps": int(diffusion_steps),
            "embedding_scale": float(embedding_scale),
        }
        self.info: dict[str, Any] = {"method": "styletts2", **(info or {})}
        if self.uses_voice_packs:
            self.info.setdefault("voice", self.speaking_voice())

    @property
    def uses_voice_packs(self) -> bool:
        """True for Kokoro and folders adapted from it: voices are packs, not reference recordings."""
        return bool(getattr(self.model, "uses_voice_packs", False))

    def voice_names(self) -> list[str]:
        """The voices a voice-pack model can speak by name (stock and learned); empty otherwise."""
        return list(self.model.voices.names()) if self.uses_voice_packs else []

    def speaking_voice(self) -> str | None:
        """The voice a voice-pack model speaks for a case given by recording: ``voice=``, else its default."""
        if not self.uses_voice_packs:
            return None
        return self.voice or self.model.config.get("default_voice")

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike,
        config: str | os.PathLike,
        name: str = "styletts2",
        device: str = "cpu",
        adapter: str | os.PathLike | None = None,
        **settings: Any,
    ) -> StyleTTS2System:
        """Official-format checkpoint (+ optional adapted-model folder) as a system."""
        for p, what in ((checkpoint, "checkpoint"), (config, "config"), (adapter, "adapter folder")):
            if p is not None and not os.path.exists(p):
                raise FileNotFoundError(f"StyleTTS 2 {what} not found: {p}")
        import torch

        from ..models.styletts2 import INFERENCE_MODULES, load_official

        model = load_official(checkpoint, config, modules=INFERENCE_MODULES)
        info: dict[str, Any] = {"checkpoint": str(checkpoint)}
        if adapter is not None:
            from ..adapters import load_adapted

            model = load_adapted(model, adapter)
            info.update(method="adapted", adapter=str(adapter))
        model = model.to(torch.device(device)).eval()
        return cls(model, name=name, info=info, **settings)

    @classmethod
    def from_adapted(
        cls,
        adapted_dir: str | os.PathLike,
        checkpoint: str | os.PathLike | None = None,
        name: str = "adapted",
        device: str = "cpu",
        allow_base_mismatch: bool = False,
        **settings: Any,
    ) -> StyleTTS2System:
        """An adapted-model folder (``tts-adapt adapt``); method, λ and trainable parameters come from its
        manifest, the base checkpoint from the manifest unless ``checkpoint`` is given (it must hold the
        weights the folder was adapted from, unless ``allow_base_mismatch``)."""
        import torch

        from ..train.artifacts import load_adapted_model, read_manifest

        manifest = read_manifest(adapted_dir)
        from ..models.styletts2 import INFERENCE_MODULES

        model = load_adapted_model(
            adapted_dir, checkpoint, modules=INFERENCE_MODULES, allow_base_mismatch=allow_base_mismatch
        )
        prior = manifest.get("prior") or {}
        info: dict[str, Any] = {
            "method": manifest.get("method"),
            "lambda": prior.get("strength"),
            "curvature": prior.get("curvature"),
            "trainable_params": _trained_count(manifest.get("parameters") or {}),
            "adapted_dir": str(adapted_dir),
        }
        info = {k: v for k, v in info.items() if v is not None}
        return cls(model.to(torch.device(device)).eval(), name=name, info=info, **settings)

    def synthesize(self, text: str, reference: Reference, seed: int) -> tuple[np.ndarray, int]:
        """``reference``: a recording (path or array); for a voice-pack model also a voice name, which it
        speaks, while a recording stands for "this case's speaker": the system's own voice."""
        if self.uses_voice_packs:
            is_name = isinstance(reference, str) and reference in self.voice_names()
            ref: Any = reference if is_name else self.speaking_voice()
        else:
            ref = str(reference) if isinstance(reference, Path) else reference
        wave, sr = self.model.synthesize(text, reference=ref, seed=seed, **self.settings)
        if hasattr(wave, "detach"):
            wave = wave.detach().cpu().numpy()
        return np.asarray(wave, dtype=np.float32).reshape(-1), int(sr)


def _adapted_factory(
    args: list[str], name: str | None, device: str, allow_base_mismatch: bool = False
) -> Synthesizer:
    """``adapted:DIR[:BASE_CHECKPOINT][:alpha=..,...]``: a folder written by ``tts-adapt adapt``."""
    opts_text = args[-1] if args and "=" in args[-1] else ""
    paths = [a for a in (args[:-1] if opts_text else args) if a]
    if not 1 <= len(paths) <= 2:
        raise ValueError(
            "adapted spec: adapted:ADAPTED_DIR[:BASE_CHECKPOINT][:alpha=..,beta=..,diffusion_steps=..]"
            " (voice=NAME for a voice-pack model)"
        )
    settings = _styletts2_settings(_parse_options(opts_text), "adapted", ("voice",))
    return StyleTTS2System.from_adapted(
        paths[0],
        paths[1] if len(paths) > 1 else None,
        name=name or "adapted",
        device=device,
        allow_base_mismatch=allow_base_mismatch,
        **settings,
    )


def _styletts2_settings(opts: dict[str, str], kind: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "alpha": float,
        "beta": float,
        "diffusion_steps": int,
        "embedding_scale": float,
    }
    allowed.update({k: str for k in extra})
    unknown = set(opts) - set(allowed)
    if unknown:
        raise ValueError(f"{kind} spec: unknown options {sorted(unknown)}; expected {sorted(allowed)}")
    return {k: allowed[k](v) for k, v in opts.items()}


def _espeak_factory(args: list[str], name: str | None, device: str) -> Synthesizer:
    if not args or not args[0]:
        raise ValueError("espeak spec needs a voice: espeak:VOICE[:pitch=P,speed=S]")
    opts = _parse_options(args[1]) if len(args) > 1 else {}
    unknown = set(opts) - {"pitch", "speed"}
    if unknown or len(args) > 2:
        raise ValueError(
            f"espeak spec: unknown options {sorted(unknown) or args[2:]}; expected pitch=, speed="
        )
    return EspeakSystem(args[0], int(opts.get("pitch", 50)), int(opts.get("speed", 175)), name=name)


def _styletts2_factory(args: list[str], name: str | None, device: str) -> Synthesizer:
    if args and args[0] == "default":  # the shipped base model: styletts2:default[:options]
        from ..models.styletts2.default import resolve_model_paths

        args = [*resolve_model_paths(None, None), *args[1:]]
    if not 2 <= len(args) <= 3:
        raise ValueError("styletts2 spec: styletts2:CHECKPOINT:CONFIG[:alpha=..,beta=..,diffusion_steps=..]")
    settings = _styletts2_settings(
        _parse_options(args[2]) if len(args) > 2 else {}, "styletts2", ("adapter", "voice")
    )
    return StyleTTS2System.from_checkpoint(
        args[0], args[1], name=name or "styletts2", device=device, **settings
    )


def _kokoro_factory(args: list[str], name: str | None, device: str) -> Synthesizer:
    """``kokoro[:voice=NAME]``: Kokoro-82M from its weight packages (converted once into the cache)."""
    if len(args) > 1 or (args and args[0] and "=" not in args[0]):
        raise ValueError("kokoro spec: kokoro[:voice=NAME] (e.g. kokoro:voice=am_michael)")
    opts = _parse_options(args[0]) if args else {}
    unknown = set(opts) - {"voice"}
    if unknown:
        raise ValueError(f"kokoro spec: unknown options {sorted(unknown)}; expected voice=")
    from ..models.kokoro import kokoro_paths

    weights, config = kokoro_paths()
    system = StyleTTS2System.from_checkpoint(
        weights, config, name=name or "kokoro", device=device, voice=opts.get("voice")
    )
    system.info.update(method="Kokoro-82M")
    return system


SYSTEM_FACTORIES: dict[str, Callable[[list[str], str | None, str], Synthesizer]] = {
    "espeak": _espeak_factory,
    "styletts2": _styletts2_factory,
    "adapted": _adapted_factory,
    "kokoro": _kokoro_factory,
}


def register_system(kind: str, factory: Callable[[list[str], str | None, str], Synthesizer]) -> None:
    """Add a spec kind: ``factory(args_after_kind_split_on_colons, name, device) -> Synthesizer``."""
    SYSTEM_FACTORIES[kind] = factory


def make_system(
    spec: str, name: str | None = None, device: str = "cpu", allow_base_mismatch: bool = False
) -> Synthesizer:
    """Build a system from ``KIND:ARG[:ARG...]`` (see module docstring).

    ``allow_base_mismatch`` lets an ``adapted:`` system load on a base other than its own (the CLI's
    ``--allow-base-mismatch``); other kinds have no recorded base and ignore it.
    """
    kind, _, rest = spec.partition(":")
    if kind not in SYSTEM_FACTORIES:
        raise ValueError(f"unknown system kind {kind!r} in spec {spec!r}; known: {sorted(SYSTEM_FACTORIES)}")
    extra = {"allow_base_mismatch": True} if allow_base_mismatch and kind == "adapted" else {}
    system = SYSTEM_FACTORIES[kind](rest.split(":") if rest else [], name, device, **extra)
    if not isinstance(system, Synthesizer):
        raise TypeError(f"factory for {kind!r} returned {type(system).__name__}, which is not a Synthesizer")
    return system


def _trained_count(parameters: dict[str, Any]) -> int | None:
    """What a run trained: the generator's adapted parameters plus a learned voice pack's values (the
    ``voice`` method trains those alone: 256, not 0)."""
    adapted = parameters.get("adapted_trainable")
    if adapted is None:
        return None
    return int(adapted) + int(parameters.get("voice_trainable") or 0)
