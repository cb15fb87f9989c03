"""Builders for the small corpus trees and audio files the data tests need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int = 24000, freq: float = 220.0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: a harmonic tone with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 5))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    wave = amp * wave * envelope / 2.0 + 0.003 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def write_audio(path: Path, wave: np.ndarray, sr: int = 24000, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


def write_utt(audio: Path, text: str | None, seconds: float = 1.0, text_suffix: str = ".txt", **kw) -> Path:
    write_audio(audio, tone(seconds, **kw))
    if text is not None:
        audio.with_name(audio.stem + text_suffix).write_text(text, encoding="utf-8")
    return audio


def build_libritts(root: Path) -> Path:
    """Two subsets; one utterance without transcript and one with an empty one."""
    for subset, speakers in (("train-clean-100", ("19", "26")), ("test-clean", ("1089",))):
        for spk in speakers:
            for chapter in ("198", "227"):
                for k in range(2):
                    uid = f"{spk}_{chapter}_{k:06d}_000000"
                    write_utt(
                        root / subset / spk / chapter / f"{uid}.wav",
                        f"Sentence {k} of {spk}.",
                        seconds=0.8 + 0.1 * k,
                        text_suffix=".normalized.txt",
                    )
    write_utt(root / "train-clean-100" / "19" / "198" / "19_198_000009_000000.wav", None)
    write_utt(
        root / "train-clean-100" / "26" / "227" / "26_227_000009_000000.wav",
        "  \n",
        text_suffix=".normalized.txt",
    )
    return root


def build_vctk(root: Path) -> Path:
    """VCTK 0.92: flac per mic, txt per utterance; p315 has no transcripts (as in the release)."""
    for spk in ("p225", "p248", "p315"):
        for n in (1, 2):
            for mic in ("mic1", "mic2"):
                audio = root / "wav48_silence_trimmed" / spk / f"{spk}_{n:03d}_{mic}.flac"
                write_audio(audio, tone(0.7, sr=48000), sr=48000)
            if spk != "p315":
                txt = root / "txt" / spk / f"{spk}_{n:03d}.txt"
                txt.parent.mkdir(parents=True, exist_ok=True)
                txt.write_text(f"Please call Stella number {n}.\n", encoding="utf-8")
    return root


def build_ljspeech(root: Path) -> Path:
    rows = [
        "LJ001-0001|Printing, in the only sense|Printing, in the only sense",
        "LJ001-0002|In 1450 it began|In fourteen fifty it began",
        "LJ001-0003|Only raw text||",
        "LJ001-0004||",
        "a broken line without separators",
    ]
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for i in range(1, 5):
        write_audio(root / "wavs" / f"LJ001-000{i}.wav", tone(0.9, sr=22050), sr=22050)
    return root


def build_folder(root: Path) -> Path:
    write_utt(root / "take1.wav", "Hello from my own voice.")
    write_utt(root / "take2.wav", "A second sentence, recorded at home.")
    write_utt(root / "orphan.wav", None)
    return root
