"""What one adaptation run was: its method label, curvature, curvature size, λ and seed.

Read from the run's own files (``manifest.json`` of ``tts-adapt adapt`` and the curvature file's
metadata), never from folder names, so a renamed folder cannot mislabel a point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def curvature_info(path: str | os.PathLike) -> dict[str, Any]:
    """Method, number of utterances and objective of a curvature file (``l2sp``: the identity)."""
    if str(path) == "l2sp":
        return {"method": "l2sp", "num_utterances": None, "objective": None}
    from ..utils.io import read_metadata

    if not Path(path).is_file():
        raise FileNotFoundError(f"curvature file not found: {path}")
    meta = read_metadata(path)
    if "method" not in meta:
        raise ValueError(f"{path} is not a tts-adapt curvature file (no 'method' in its metadata)")
    data = meta.get("data") or {}
    return {
        "method": meta["method"],
        "num_utterances": int(meta.get("num_utterances") or 0),
        "objective": data.get("objective") if isinstance(data, dict) else None,
        "path": str(path),
    }


def run_info(adapted_dir: str | os.PathLike) -> dict[str, Any]:
    """``method`` (``full``, ``linear``, ``lora``, ``lora+kfac`` ...), ``prior``, ``curvature_size``,
    ``lambda``, ``seed``, ``steps``, ``wall_seconds`` of an adapted-model folder."""
    from ..train.artifacts import read_manifest

    manifest = read_manifest(adapted_dir)
    method = str(manifest["method"])
    prior = manifest.get("prior") or None
    cfg = manifest.get("train_config") or {}
    info: dict[str, Any] = {
        "method": method,
        "prior": None,
        "curvature_size": None,
        "lambda": None,
        "seed": cfg.get("seed"),
        "steps": cfg.get("steps"),
        "wall_seconds": manifest.get("wall_seconds"),
    }
    if prior:
        curv = curvature_info(prior["curvature"])
        base = method.split("+", 1)[0]
        info.update(
            method=f"{base}+{curv['method']}",
            prior=curv["method"],
            curvature_size=curv["num_utterances"],
            **{"lambda": prior.get("strength")},
        )
    return info
