"""Speech engines that voice corpora (``make-corpus --engine NAME``), looked up by name.

Each engine is a class implementing :class:`~tts_adapt.data.engines.base.Engine` (its voices, their
native rate and licence, an install check, one sentence's synthesis). The registry maps a name to a
``"module:Class"`` path, imported only when the engine is used. espeak-ng, the default engine, keeps
its own corpus builder (:mod:`tts_adapt.data.synthetic`): its speakers are generated voice settings,
not a fixed list of voices.

Registering an engine is a class and one line::

    register_engine("kokoro", "tts_adapt.models.kokoro.engine:KokoroEngine")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import Engine, EngineNotInstalled, EngineVoice, Speech, VoiceLicense, find_program, to_corpus_rate

DEFAULT_ENGINE = "espeak"

_ENGINES: dict[str, str | Callable[[], Engine]] = {
    "piper": "tts_adapt.data.engines.piper:PiperEngine",
    "flite": "tts_adapt.data.engines.flite:FliteEngine",
    "festival": "tts_adapt.data.engines.festival:FestivalEngine",
    "kokoro": "tts_adapt.models.kokoro.engine:KokoroEngine",
}


def register_engine(name: str, factory: str | Callable[[], Engine]) -> None:
    """Make ``--engine name`` available: ``factory`` is a ``"module:Class"`` path or a callable."""
    if name == DEFAULT_ENGINE:
        raise ValueError(f"the engine name {name!r} is taken by the espeak-ng corpus")
    _ENGINES[name] = factory


def engine_names() -> list[str]:
    """Every engine ``make-corpus --engine`` accepts, the default first."""
    return [DEFAULT_ENGINE, *_ENGINES]


def get_engine(name: str, **options) -> Engine:
    """A fresh engine by name; ``options`` go to its constructor (e.g. ``path=`` for a program)."""
    if name not in _ENGINES:
        raise ValueError(f"--engine {name}: unknown engine; expected one of {', '.join(engine_names())}")
    factory = _ENGINES[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    engine = factory(**options)
    if not isinstance(engine, Engine):
        raise TypeError(f"engine {name} is registered as {_ENGINES[name]!r}, which is not an Engine")
    return engine


__all__ = [
    "DEFAULT_ENGINE",
    "Engine",
    "EngineNotInstalled",
    "EngineVoice",
    "Speech",
    "VoiceLicense",
    "engine_names",
    "find_program",
    "get_engine",
    "register_engine",
    "to_corpus_rate",
]
