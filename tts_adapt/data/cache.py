"""On-disk cache of prepared audio features, keyed by file content and every setting that matters.

A cache entry holds the 24 kHz mono waveform (16-bit unless it exceeds full scale) and the StyleTTS 2
log-mel of the zero-padded waveform (the official training input), with JSON metadata (duration,
levels, source) in one safetensors file. The key is ``sha256(file bytes)`` under a folder named by
the settings' hash, so renaming a file keeps its entry, editing it invalidates it, and changing any
setting uses a fresh folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import audio as A
from ..text.phonemize import default_cache_dir
from ..utils.io import load_tensors, read_metadata, save_tensors

CACHE_FORMAT = 2


@dataclass(frozen=True)
class FeatureSettings:
    """Everything that changes the cached arrays. ``edge_padding`` is the official 5000 zero samples."""

    sample_rate: int = A.SAMPLE_RATE
    edge_padding: int = 5000
    n_fft: int = A.N_FFT
    win_length: int = A.WIN_LENGTH
    hop_length: int = A.HOP_LENGTH
    n_mels: int = A.N_MELS
    filterbank_sample_rate: int = A.FILTERBANK_SAMPLE_RATE
    log_mean: float = A.LOG_MEL_MEAN
    log_std: float = A.LOG_MEL_STD
    resampler: str = "soxr_hq"
    channel_mix: str = "mean"
    format: int = CACHE_FORMAT

    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def num_frames(self, num_samples: int) -> int:
        """Mel frames of a ``num_samples`` waveform after edge padding (centre-padded STFT)."""
        return 1 + (num_samples + 2 * self.edge_padding) // self.hop_length


def hash_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class FeatureCache:
    """Content-addressed feature store (default ``$TTS_ADAPT_CACHE/features``)."""

    def __init__(
        self, root: str | os.PathLike | None = None, settings: FeatureSettings | None = None
    ) -> None:
        self.settings = settings or FeatureSettings()
        if self.settings.sample_rate != A.SAMPLE_RATE or self.settings.hop_length != A.HOP_LENGTH:
            raise ValueError(
                "the StyleTTS 2 mel is defined at 24 kHz with hop 300; other settings are not supported"
            )
        self.root = Path(root) if root is not None else default_cache_dir() / "features"
        self.dir = self.root / self.settings.key()[:16]

    def path(self, content_hash: str) -> Path:
        return self.dir / content_hash[:2] / f"{content_hash}.safetensors"

    def metadata(self, content_hash: str) -> dict[str, Any] | None:
        """The entry's metadata, or ``None`` if absent or unreadable (a damaged entry is recomputed)."""
        p = self.path(content_hash)
        if not p.exists():
            return None
        try:
            meta = read_metadata(p)
        except Exception:
            return None
        return meta if meta.get("content_hash") == content_hash else None

    def put(self, content_hash: str, wave: torch.Tensor, mel: torch.Tensor, meta: dict[str, Any]) -> Path:
        p = self.path(content_hash)
        meta = {**meta, "content_hash": content_hash, "settings": dataclasses.asdict(self.settings)}
        save_tensors(p, {"wave": _pack_wave(wave), "mel": mel.float().contiguous()}, meta)
        return p

    def write_manifest(self) -> None:
        """A readable note of the settings beside the entries (for people browsing the cache)."""
        from ..utils.io import write_json

        target = self.dir / "settings.json"
        if not target.exists():
            write_json(target, dataclasses.asdict(self.settings))


def load_features(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """``(wave [n], mel [80, T], metadata)`` of one cache entry."""
    tensors, meta = load_tensors(path)
    return _unpack_wave(tensors["wave"]), tensors["mel"], meta


def _pack_wave(wave: torch.Tensor) -> torch.Tensor:
    """16-bit PCM when the wave fits (half the disk; exact for 16-bit sources already at 24 kHz,
    otherwise within 2**-16 of the float), float32 when it goes beyond full scale."""
    wave = wave.float().contiguous()
    if wave.numel() and wave.abs().max() > 1.0:
        return wave
    return torch.round(wave * 32768.0).clamp_(-32768, 32767).to(torch.int16)


def _unpack_wave(stored: torch.Tensor) -> torch.Tensor:
    return stored.float() / 32768.0 if stored.dtype == torch.int16 else stored


def compute_features(wave: torch.Tensor, settings: FeatureSettings) -> torch.Tensor:
    """Log-mel ``[80, T]`` of the wave padded with ``edge_padding`` zeros at both ends (official)."""
    padded = torch.nn.functional.pad(wave.float(), (settings.edge_padding, settings.edge_padding))
    return A.log_mel(padded)[0]
