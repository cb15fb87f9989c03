"""One row per adaptation run of a voice-pack model (Kokoro): the new voice, the stock voices, the loss.

Where the StyleTTS 2 experiment measures forgetting on held-out speakers (:mod:`.collect`), a voice-pack
model's ability is its own shipped voices, so each run's row holds:

* the target voice, from the evaluation's ``target`` set: similarity, WER, Distill-MOS, MCD;
* the stock voices, from the evaluation's stock-voice measures (``evaluate --stock-voices``): identity
  retention (adapted vs base clip of the same voice, text and seed), WER rise, voices still nearest
  their own base clip, and per-voice retention;
* the held-out loss on the model's own speech (``forgetting-loss``) and each curvature's prediction of
  its rise (:mod:`.predict`).

Method, curvature size, λ and seed come from the run's manifest (:func:`.runs.run_info`) as recorded by
the loss file, never from the folder name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .collect import load_losses, run_fields

TARGET_METRICS = (  # (row field, metric of the target set)
    ("target_sim", "sim"),
    ("target_wer", "wer"),
    ("target_mos", "distillmos"),
    ("target_mcd", "mcd"),
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def _estimate(row: dict[str, Any], field: str, est: dict[str, Any] | None) -> None:
    row[field] = est.get("mean") if est else None
    row[field + "_ci"] = [est["low"], est["high"]] if est and "low" in est and "high" in est else None


def system_scores(system: dict[str, Any]) -> dict[str, Any]:
    """The target and stock-voice fields of one evaluated system (``aggregates.json``'s entry)."""
    row: dict[str, Any] = {}
    target = (system.get("sets") or {}).get("target") or {}
    for fld, metric in TARGET_METRICS:
        _estimate(row, fld, target.get(metric))
    if row["target_sim"] is None and target.get("sim_ref"):  # recordings: similarity to their own profile
        _estimate(row, "target_sim", target["sim_ref"])
    stock = system.get("stock") or {}
    _estimate(row, "stock_retention", stock.get("retention"))
    _estimate(row, "stock_wer_rise", stock.get("wer_rise"))
    _estimate(row, "stock_wer", stock.get("wer"))
    kept = stock.get("nearest_own") or {}
    row["stock_kept"] = kept.get("kept")
    row["stock_voices"] = kept.get("of") or len(stock.get("voices") or [])
    row["stock_not_kept"] = kept.get("not_kept") or {}
    row["per_voice_retention"] = {
        v: pv["retention"] for v, pv in (stock.get("per_voice") or {}).items() if pv.get("retention")
    }
    row["per_voice_wer"] = {
        v: (pv.get("wer_base"), pv.get("wer")) for v, pv in (stock.get("per_voice") or {}).items()
    }
    return row


def collect_stock_runs(eval_dir: str | os.PathLike, loss_dir: str | os.PathLike) -> dict[str, Any]:
    """``{"rows", "base", "ground_truth", "not_evaluated", "stock_voices"}`` for one target."""
    eval_dir = Path(eval_dir)
    agg_path = eval_dir / "aggregates.json"
    if not agg_path.is_file():
        raise FileNotFoundError(f"{agg_path} not found: run `tts-adapt evaluate --out {eval_dir}` first")
    agg = _read_json(agg_path)
    base_loss, losses = load_losses(loss_dir) if Path(loss_dir).is_dir() else (None, {})
    systems = agg.get("systems") or {}
    rows = []
    for name, s in systems.items():
        if s.get("role") != "adapted":
            continue
        loss = losses.get(name)
        row: dict[str, Any] = {
            **run_fields(name, s, loss),
            **system_scores(s),
            "loss_increase": loss["increase"] if loss else None,
            "predicted": {},  # filled by the summary (:mod:`.predict`)
        }
        rows.append(row)
    base = next((dict(s, name=n) for n, s in systems.items() if s.get("role") == "base"), None)
    truth = next((dict(s, name=n) for n, s in systems.items() if s.get("role") == "ground_truth"), None)
    base_row = (
        {**system_scores(base), "name": base["name"], "voice": (base.get("info") or {}).get("voice")}
        if base
        else None
    )
    if base_row is not None:
        base_row["loss"] = base_loss["base_loss"]["mean"] if base_loss else None
        base_row["stock_wer"] = ((base.get("stock") or {}).get("wer") or {}).get("mean")
    return {
        "rows": sorted(rows, key=lambda r: r["run"]),
        "base": base_row,
        "ground_truth": {**system_scores(truth), "name": truth["name"]} if truth else None,
        "not_evaluated": sorted(set(losses) - {r["run"] for r in rows}),
        "stock_voices": list((agg.get("stock") or {}).get("voices") or []),
    }
