"""Each curvature's prediction of forgetting for finished runs, computed at summary time and cached.

``forgetting-loss --curvature`` records predictions with the loss, but then every run waits for every
curvature file; here the expensive held-out loss and the cheap prediction are decoupled: the summary
computes ``½·vec(ΔW)ᵀ H vec(ΔW)`` (:func:`.loss.predictions`, the prior itself at strength 1) for each
run with the curvature files that exist now, and keeps one small JSON per run, reused while the run's
manifest and the curvature files are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def _fingerprint(adapted: Path, curvatures: Mapping[str, str]) -> str:
    h = hashlib.sha1()
    for name in ("manifest.json", "adapter/adapter_model.safetensors", "voices.safetensors"):
        p = adapted / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    for label, path in sorted(curvatures.items()):
        st = Path(path).stat() if path != "l2sp" else None
        h.update(f"{label}={path}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0};".encode())
    return h.hexdigest()


def predict_runs(
    checkpoint: str,
    config: str,
    runs: Mapping[str, str | os.PathLike],
    curvatures: Mapping[str, str],
    cache: str | os.PathLike,
) -> dict[str, dict[str, float]]:
    """``{run: {label: prediction}}`` for the adapted folders ``runs`` and the curvature files that exist
    (``{label: path or 'l2sp'}``; a missing file is left out with a log line)."""
    from ..utils.io import write_json

    present = {k: v for k, v in curvatures.items() if v == "l2sp" or Path(v).is_file()}
    for label in sorted(set(curvatures) - set(present)):
        log.info("curvature %s not there yet (%s): no %s predictions", label, curvatures[label], label)
    cache = Path(cache)
    out: dict[str, dict[str, float]] = {}
    todo = {}
    for run, folder in runs.items():
        key = _fingerprint(Path(folder), present)
        path = cache / f"{run}.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("key") == key:
                out[run] = stored["predicted"]
                continue
        todo[run] = (Path(folder), key, path)
    if not todo:
        return out
    from ..models.styletts2 import load_official
    from .loss import build_predictors, load_weights_into, predictions

    model = load_official(checkpoint, config).eval()
    priors = build_predictors(model, present)
    for run, (folder, key, path) in todo.items():
        load_weights_into(model, folder, checkpoint)
        out[run] = predictions(priors)
        write_json(path, {"run": run, "adapted": str(folder), "key": key, "predicted": out[run]})
    return out
