"""What a clip written for a listener gets: a common speech level, headroom, a fade and a tail of silence.

A model's raw output has no agreed level: Kokoro's voices differ from each other by several dB, and the
shipped base model's voices by more (their loudness follows the reference recording), and some peak
above full scale. Played one after another they jump in loudness, and a 16-bit file clips. So a clip
for listening is brought to one *speech level* (the RMS of its active frames, as below; -20 dBFS by
default, where read speech usually peaks 10-15 dB higher) with its peak kept under ``PEAK`` (the peak
wins: a voice whose peaks would pass it ends up quieter, never clipped). The level is gated so that the
pauses between sentences do not lower it: 20 ms frames within ``GATE_DB`` of the loudest frame count.

A model also stops where its last frame stops, often mid-sound: the last 10 ms still carry speech
energy, and a player cuts it with a click. A short raised-cosine fade (``FADE_S``) and a tail of
silence (``TAIL_S``) end the clip the way a recording ends.

Only what is written for listening is finished this way (``tts-adapt synth``); the evaluation protocol
scores the model's raw output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PEAK = 0.99  # a clip never peaks above this (16-bit full scale is 1.0)
LEVEL_DBFS = -20.0  # the default speech level
GATE_DB = 40.0  # frames this far below the loudest one are pauses, not speech
FRAME_S = 0.02
FADE_S = 0.01
TAIL_S = 0.25


def dbfs(value: float) -> float:
    """An amplitude (1.0 = full scale) in dB; silence is -inf."""
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def speech_rms(wave: np.ndarray, sample_rate: int, gate_db: float = GATE_DB) -> float:
    """RMS of the frames within ``gate_db`` of the loudest 20 ms frame (the speech, not its pauses)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    n = max(1, int(round(FRAME_S * sample_rate)))
    frames = len(wave) // n
    if frames == 0:
        return float(np.sqrt(np.mean(wave**2))) if len(wave) else 0.0
    power = np.mean(wave[: frames * n].reshape(frames, n) ** 2, axis=1)
    top = float(power.max())
    if top <= 0:
        return 0.0
    active = power >= top * 10 ** (-gate_db / 10)
    return float(np.sqrt(power[active].mean()))


def within_full_scale(wave: np.ndarray, peak: float = PEAK) -> tuple[np.ndarray, float]:
    """``(wave, gain)``: a wave that would clip in 16-bit PCM scaled to ``peak`` (gain < 1), else as it is
    (gain 1). Scaling keeps the waveform's shape, which clipping would not."""
    top = float(np.abs(wave).max()) if len(wave) else 0.0
    if top <= 1.0:
        return wave, 1.0
    gain = peak / top
    return wave * gain, gain


@dataclass(frozen=True)
class Finish:
    """What :func:`finish_for_listening` did: the gain applied (dB), whether the peak limited it, the
    speech level before and after (dBFS), and the seconds of silence added."""

    gain_db: float
    peak_limited: bool
    level_before: float
    level_after: float
    tail_s: float


def finish_for_listening(
    wave: np.ndarray,
    sample_rate: int,
    level_dbfs: float | None = LEVEL_DBFS,
    peak: float = PEAK,
    fade_s: float = FADE_S,
    tail_s: float = TAIL_S,
) -> tuple[np.ndarray, Finish]:
    """The clip at ``level_dbfs`` (``None``: its own level), peak at most ``peak``, faded out over
    ``fade_s`` and followed by ``tail_s`` of silence; float32."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    before = speech_rms(wave, sample_rate)
    top = float(np.abs(wave).max()) if len(wave) else 0.0
    gain = 1.0
    if level_dbfs is not None and before > 0:
        gain = 10 ** (level_dbfs / 20) / before
    limited = top * gain > peak
    if limited:
        gain = peak / top
    wave = wave * gain
    n_fade = min(len(wave), int(round(fade_s * sample_rate)))
    if n_fade > 1:
        wave[-n_fade:] *= 0.5 * (1 + np.cos(np.linspace(0, math.pi, n_fade)))
    wave = np.concatenate([wave, np.zeros(int(round(tail_s * sample_rate)))])
    info = Finish(
        gain_db=dbfs(gain),
        peak_limited=limited,
        level_before=dbfs(before),
        level_after=dbfs(before * gain),
        tail_s=tail_s,
    )
    return wave.astype(np.float32), info


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """16-bit samples, clipped rather than peak-normalised, so systems played side by side keep their
    relative loudness (what the demo sends to the browser)."""
    return (np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype(np.int16)
