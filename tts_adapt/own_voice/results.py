"""What a finished own-voice job offers: its measures, the stock-voice clips, and files to take away.

The measures are the ``measure`` stage's ``evaluate`` output (``run/measure/aggregates.json``): target
similarity and WER of the new voice and of the stock voice it started from, on sentences of the
person's own clips; and per stock voice, the retention (same text, seed and voice pack through the
adapted model and through the base, speaker-embedding cosine; exactly 1.0 when no weight moved).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.io import atomic_path
from .jobs import Job

# an adapter folder's files a person needs to load it again (checkpoints and logs stay behind)
ADAPTER_SKIP_DIRS = {"checkpoints", "tensorboard", "samples"}


@dataclass
class Measures:
    voice: str
    start_voice: str | None
    new_sim: float
    new_wer: float
    start_sim: float
    start_wer: float
    clips_sim: float | None  # the person's clips against each other: the ceiling
    stock: dict[str, dict] = field(default_factory=dict)  # voice -> retention, wer, wer_base, kept
    retention: float | None = None
    sentences: int = 0


def read_measures(job: Job) -> Measures | None:
    """The measure stage's numbers, or None before it has finished."""
    path = job.run_dir / "measure" / "aggregates.json"
    if not (job.run_dir / "stages").is_dir() or not any((job.run_dir / "stages").glob("*-measure.done.json")):
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    systems = data["systems"]
    adapted = next(name for name, s in systems.items() if s.get("role") == "adapted")
    new, base = systems[adapted]["sets"]["target"], systems["base"]["sets"]["target"]
    truth = systems.get("ground_truth", {}).get("sets", {}).get("target", {})
    stock = systems[adapted].get("stock") or {}
    per_voice = {
        voice: {
            "retention": v["retention"]["mean"],
            "wer": v["wer"],
            "wer_base": v["wer_base"],
            "kept": bool(v.get("kept")),
        }
        for voice, v in (stock.get("per_voice") or {}).items()
    }
    return Measures(
        voice=systems[adapted]["info"].get("voice") or adapted,
        start_voice=(systems["base"].get("info") or {}).get("voice"),
        new_sim=new["sim"]["mean"],
        new_wer=new["wer"]["mean"],
        start_sim=base["sim"]["mean"],
        start_wer=base["wer"]["mean"],
        clips_sim=truth.get("sim", {}).get("mean"),
        stock=per_voice,
        retention=(stock.get("retention") or {}).get("mean"),
        sentences=int(new["sim"].get("n", 0)),
    )


def stock_clip(job: Job, voice: str, system: str) -> Path | None:
    """The measure stage's clip of stock ``voice`` through ``system`` (``base`` or the new voice's name)."""
    path = job.run_dir / "measure" / "audio" / system / "stock" / voice / "00.wav"
    return path if path.is_file() else None


def voice_files(job: Job) -> list[Path]:
    """The exported voice pack in Kokoro's own layouts (``.pt``, ``.bin``)."""
    return [p for p in (job.export_dir / f"{job.name}.pt", job.export_dir / f"{job.name}.bin") if p.is_file()]


def _zip_folder(folder: Path, out: Path, skip: set[str] = frozenset(), extra: list[Path] = ()) -> Path:
    # level 1: Kokoro's weights are dequantised int8, so the fastest level already takes the ONNX export
    # from 333 MB to 148 MB, in a quarter of the default level's time (which only reaches 128 MB)
    with (
        atomic_path(out, suffix=".zip") as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
    ):
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not (rel.parts and rel.parts[0] in skip):
                archive.write(path, f"{out.stem}/{rel.as_posix()}")
        for path in extra:
            archive.write(path, f"{out.stem}/{path.name}")
    return out


def adapter_zip(job: Job, folder: str | os.PathLike) -> Path:
    """The adapted folder (adapter weights, config, voices, manifest) as ``<name>-adapter.zip`` in
    ``folder``: ``tts-adapt synth --adapted`` and ``demo/app.py --adapted`` load it unzipped."""
    if not (job.adapted_dir / "manifest.json").is_file():
        raise ValueError("the adaptation has not finished yet")
    return _zip_folder(job.adapted_dir, Path(folder) / f"{job.name}-adapter.zip", ADAPTER_SKIP_DIRS)


def onnx_zip(job: Job, folder: str | os.PathLike) -> Path:
    """The merged ONNX export with the voice pack beside it, as ``<name>-onnx.zip`` in ``folder``."""
    onnx = job.export_dir / "onnx"
    if not onnx.is_dir() or not any(onnx.glob("*.onnx")):
        raise ValueError("no ONNX export yet: build it first")
    return _zip_folder(onnx, Path(folder) / f"{job.name}-onnx.zip", extra=voice_files(job))
