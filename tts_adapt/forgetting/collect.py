"""One row per adaptation run: the evaluation's scores beside the held-out pre-training loss.

Sources: the evaluation folder that every run was scored into (``tts-adapt evaluate --accumulate``:
``aggregates.json`` names each system, with bootstrap intervals and speaker-level retention) and the
``tts-adapt forgetting-loss`` files (one per run, plus ``base.json``). A run is matched by name: the
evaluation's system name is the loss file's ``run``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

METRICS = (  # (row field, set, metric)
    ("target_sim", "target", "sim"),
    ("target_per", "target", "per"),
    ("target_mcd", "target", "mcd"),
    ("heldout_sim", "heldout", "sim"),
    ("heldout_per", "heldout", "per"),
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def load_losses(folder: str | os.PathLike) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """``(base, {run: loss file})`` from a folder of ``forgetting-loss`` outputs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"loss folder not found: {folder}")
    base, runs = None, {}
    for path in sorted(folder.glob("*.json")):
        d = _read_json(path)
        if "base_loss" not in d or "run" not in d:
            raise ValueError(f"{path} is not a forgetting-loss file (no 'run'/'base_loss')")
        if d["run"] == "base":
            base = d
        else:
            if d["run"] in runs:
                raise ValueError(f"{path}: run {d['run']!r} appears in two loss files")
            runs[d["run"]] = d
    specs = {json.dumps(d["spec"], sort_keys=True) for d in [*runs.values(), *([base] if base else [])]}
    if len(specs) > 1:
        raise ValueError(f"{folder}: the loss files were computed on different held-out data or objectives")
    return base, runs


def run_fields(name: str, system: dict[str, Any], loss: dict[str, Any] | None) -> dict[str, Any]:
    """What a run was (method, curvature size, λ, seed, steps, time), as its loss file recorded it from the
    run's manifest; the evaluation's own note of the method where there is no loss file."""
    info = (loss or {}).get("info") or {}
    return {
        "run": name,
        "method": info.get("method") or (system.get("info") or {}).get("method"),
        "curvature_size": info.get("curvature_size"),
        "lambda": info.get("lambda"),
        "seed": info.get("seed"),
        "steps": info.get("steps"),
        "adapt_seconds": info.get("wall_seconds"),
    }


def write_rows_csv(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    """``cols`` of each row, then one ``predicted_<curvature>`` column per curvature any row predicts."""
    import csv
    import io

    from ..utils.io import write_text

    labels = sorted({k for r in rows for k in (r.get("predicted") or {})})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols + [f"predicted_{k}" for k in labels])
    for r in rows:
        w.writerow([r.get(c) for c in cols] + [(r.get("predicted") or {}).get(k) for k in labels])
    write_text(path, buf.getvalue())


def collect_runs(eval_dir: str | os.PathLike, loss_dir: str | os.PathLike) -> dict[str, Any]:
    """``{"rows": [...], "base": {...}, "ground_truth": {...}}``; one row per adapted system."""
    eval_dir = Path(eval_dir)
    agg_path = eval_dir / "aggregates.json"
    if not agg_path.is_file():
        raise FileNotFoundError(f"{agg_path} not found: run `tts-adapt evaluate --out {eval_dir}` first")
    agg = _read_json(agg_path)
    base_loss, losses = load_losses(loss_dir)
    systems = agg.get("systems", {})

    def scores(s: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fld, st, m in METRICS:
            est = (s.get("sets") or {}).get(st, {}).get(m)
            out[fld] = est["mean"] if est else None
            out[fld + "_ci"] = [est["low"], est["high"]] if est else None
        return out

    rows = []
    for name, s in systems.items():
        if s.get("role") != "adapted":
            continue
        loss = losses.get(name)
        row: dict[str, Any] = {**run_fields(name, s, loss), **scores(s)}
        for m in ("sim", "per"):
            est = (s.get("retention_speaker") or {}).get(m)
            row[f"retention_{m}"] = est["mean"] if est else None
            row[f"retention_{m}_ci"] = [est["low"], est["high"]] if est else None
        if loss:
            row.update(
                loss_base=loss["base_loss"]["mean"],
                loss_adapted=loss["loss"]["mean"],
                loss_increase=loss["increase"],
                predicted=loss.get("predicted") or {},
            )
        rows.append(row)
    missing = sorted(set(losses) - {r["run"] for r in rows})
    base_row = next((dict(s, name=n) for n, s in systems.items() if s.get("role") == "base"), None)
    gt_row = next((dict(s, name=n) for n, s in systems.items() if s.get("role") == "ground_truth"), None)
    return {
        "rows": sorted(rows, key=lambda r: r["run"]),
        "base": {**scores(base_row), "loss": base_loss["base_loss"]["mean"] if base_loss else None}
        if base_row
        else None,
        "ground_truth": scores(gt_row) if gt_row else None,
        "not_evaluated": missing,
        "heldout_speakers": (agg.get("test_set") or {}).get("speakers", {}).get("heldout", []),
    }
