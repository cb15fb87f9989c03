"""F0 targets for pre-training, computed once per utterance and cached beside the run.

Pre-training has no pitch extractor to lean on (the official recipe uses a JDC network trained
elsewhere), so F0 comes from a DSP tracker on the waveform at the mel hop, unvoiced frames 0:

* ``yin``: librosa's YIN with a voicing decision from frame level and zero-crossing rate. About 200×
  faster than pYIN on a CPU, which is what makes a pre-training corpus of thousands of utterances
  affordable; on clean read speech (the synthetic corpus) its voicing errors are at fricative edges.
* ``pyin``: librosa's probabilistic YIN (the same tracker the adaptation trainer offers), slower.
* ``yin-hs``: YIN with each voiced frame moved to the F0 whose harmonics carry the most energy
  (``refine_f0``): F0 precise enough for the upper harmonics of a ``harmonic`` decoder.

The table is a safetensors file keyed by utterance id, written atomically, with the tracker settings in
its metadata; a table made with other settings is recomputed, never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.cache import load_features
from ..data.prepare import PreparedUtterance
from ..utils.io import load_tensors, save_tensors
from .pitch import HOP, TRACKERS, track_f0

log = logging.getLogger(__name__)


class F0Table:
    """Per-utterance F0 tracks of a prepared corpus, cropped like the mel."""

    def __init__(self, tracks: dict[str, np.ndarray]) -> None:
        self.tracks = tracks

    def crop(self, uid: str, start_frame: int, frames: int) -> np.ndarray:
        f0 = self.tracks[uid]
        out = np.zeros(frames, dtype=np.float32)
        piece = f0[start_frame : start_frame + frames]
        out[: len(piece)] = piece
        return out

    @classmethod
    def build(
        cls,
        items: Sequence[PreparedUtterance],
        path: str | Path,
        method: str = "yin",
        sample_rate: int = 24000,
        progress: bool = True,
    ) -> F0Table:
        """Load the table at ``path`` if it covers ``items`` with the same tracker, else compute it."""
        from ..utils.progress import progress_bar as tqdm

        path = Path(path)
        settings = {"method": method, "hop": HOP, "sample_rate": sample_rate, "format": 1}
        tracks: dict[str, np.ndarray] = {}
        if path.exists():
            tensors, meta = load_tensors(path)
            if meta.get("settings") == settings:
                tracks = {k: v.numpy() for k, v in tensors.items()}
            else:
                log.info("%s was made with %s; recomputing with %s", path, meta.get("settings"), settings)
        todo = [p for p in items if p.id not in tracks]
        for p in tqdm(todo, desc=f"F0 ({method})", unit="utt", disable=not progress or not todo):
            wave, mel, meta = load_features(p.features)
            # the cached mel was computed on the wave with edge padding (official), so track the same
            # samples: frame k of the F0 is frame k of the mel
            pad = int(meta.get("settings", {}).get("edge_padding", 0))
            f0 = track_f0(np.pad(wave.numpy(), (pad, pad)), sample_rate, method)
            frames = mel.shape[1]
            tracks[p.id] = f0[:frames] if len(f0) >= frames else np.pad(f0, (0, frames - len(f0)))
        if todo:
            save_tensors(
                path,
                {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tracks.items()},
                metadata={"settings": settings},
            )
        return cls(tracks)


__all__ = ["F0Table", "HOP", "TRACKERS", "track_f0"]
