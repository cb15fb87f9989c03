"""Pareto dominance between methods, rank correlation of predicted vs real forgetting, the goal check.

A *point* is one (method, curvature size, λ) setting averaged over its seeds, placed at
``(held-out similarity, target similarity)``; both are better when higher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..evaluation.stats import spearman

Point = tuple[float, float]
GOAL_TARGET_SHARE = 0.95  # of plain LoRA's target similarity
GOAL_RETENTION = 0.95  # of the base model's held-out similarity; stock-voice retention (voice packs)


def weakly_dominated(p: Point, by: Sequence[Point]) -> bool:
    """Some point of ``by`` is at least as good as ``p`` in both coordinates."""
    return any(q[0] >= p[0] and q[1] >= p[1] for q in by)


def dominates(a: Sequence[Point], b: Sequence[Point]) -> bool:
    """Curve ``a`` dominates curve ``b`` (Zitzler's "better" relation between point sets): every point
    of ``b`` is weakly dominated by a point of ``a``, and some point of ``a`` is not weakly dominated by
    any point of ``b``. In regions: what ``b`` reaches, ``a`` reaches too, and ``a`` reaches more."""
    a, b = [tuple(map(float, p)) for p in a], [tuple(map(float, p)) for p in b]
    if not a or not b:
        return False
    return all(weakly_dominated(p, a) for p in b) and not all(weakly_dominated(p, b) for p in a)


def seed_means(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    """One point per (method, curvature size, λ): the mean of ``fields`` over seeds, with their spread."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r.get("curvature_size"), r.get("lambda")), []).append(r)
    points = []
    for (method, size, lam), members in groups.items():
        p: dict[str, Any] = {
            "method": method,
            "curvature_size": size,
            "lambda": lam,
            "seeds": sorted(m.get("seed") for m in members if m.get("seed") is not None),
            "runs": [m["run"] for m in members],
        }
        for f in fields:
            vals = np.array([m.get(f) for m in members if m.get(f) is not None], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            p[f] = float(vals.mean()) if vals.size else None
            p[f + "_sd"] = float(vals.std(ddof=1)) if vals.size > 1 else None
        points.append(p)
    return sorted(points, key=lambda p: (p["method"], p["curvature_size"] or 0, p["lambda"] or 0))


def curve(
    points: Sequence[Mapping[str, Any]], method: str, size: int | None = None, x: str = "heldout_sim"
) -> list[Point]:
    """``(x, target sim)`` of a method's points (one curvature size), ordered by λ; ``x`` is what was
    kept: held-out similarity (StyleTTS 2) or ``stock_retention`` (voice-pack models)."""
    chosen = [
        p
        for p in points
        if p["method"] == method
        and (size is None or p.get("curvature_size") in (None, size))
        and p.get(x) is not None
        and p.get("target_sim") is not None
    ]
    chosen.sort(key=lambda p: p.get("lambda") or 0)
    return [(p[x], p["target_sim"]) for p in chosen]


def goal_check(
    points: Sequence[Mapping[str, Any]], base_heldout_sim: float | None, main_size: int | None
) -> dict[str, Any]:
    """The experiment's goal, computed: at ≥ 95 % of plain LoRA's target similarity, LoRA + KFAC keeps
    ≥ 95 % of the base model's held-out similarity (some λ), and the KFAC curve dominates the diag and
    the L2-SP curves. Every part is reported with the numbers it rests on; missing data fails it."""
    out: dict[str, Any] = {"main_size": main_size, "parts": {}}
    lora = [p for p in points if p["method"] == "lora" and p.get("target_sim") is not None]
    kfac = [
        p
        for p in points
        if p["method"] == "lora+kfac"
        and p.get("curvature_size") == main_size
        and p.get("target_sim") is not None
    ]
    part1: dict[str, Any] = {"met": False}
    if lora and kfac and base_heldout_sim:
        lora_target = float(np.mean([p["target_sim"] for p in lora]))
        need = GOAL_TARGET_SHARE * lora_target  # taken literally, also for a negative similarity
        ok = [
            p
            for p in kfac
            if p["target_sim"] >= need
            and p.get("heldout_sim") is not None
            and p["heldout_sim"] / base_heldout_sim >= GOAL_RETENTION
        ]
        part1.update(
            met=bool(ok),
            lora_target_sim=lora_target,
            target_needed=need,
            base_heldout_sim=base_heldout_sim,
            kfac=[
                {
                    "lambda": p["lambda"],
                    "target_sim": p["target_sim"],
                    "retention": (p["heldout_sim"] / base_heldout_sim)
                    if p.get("heldout_sim") is not None
                    else None,
                }
                for p in sorted(kfac, key=lambda p: p["lambda"] or 0)
            ],
            lambdas_meeting=[p["lambda"] for p in ok],
        )
    else:
        part1["why"] = "needs plain LoRA, LoRA + KFAC at the main curvature size and the base model's scores"
    out["parts"]["retention_at_lora_target"] = part1
    kfac_curve = curve(points, "lora+kfac", main_size)
    for other in ("lora+diag", "lora+l2sp"):
        other_curve = curve(points, other, main_size if other != "lora+l2sp" else None)
        out["parts"][f"kfac_dominates_{other.split('+')[1]}"] = {
            "met": dominates(kfac_curve, other_curve),
            "kfac": kfac_curve,
            other: other_curve,
        }
    out["met"] = all(p["met"] for p in out["parts"].values())
    return out


def rank_correlations(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Spearman's ρ between each curvature's predicted increase and the measured held-out loss increase,
    over every adapted run that has both."""
    labels = sorted({k for r in rows for k in (r.get("predicted") or {})})
    out = {}
    for label in labels:
        pairs = [
            (r["predicted"][label], r["loss_increase"])
            for r in rows
            if label in (r.get("predicted") or {}) and r.get("loss_increase") is not None
        ]
        x, y = zip(*pairs, strict=True) if pairs else ((), ())
        out[label] = {"spearman": spearman(x, y), "n": len(pairs)}
    return out


def stock_goal_check(points: Sequence[Mapping[str, Any]], main_size: int | None) -> dict[str, Any]:
    """The Kokoro experiment's goal, computed on seed means (docs/forgetting.md, "voice-pack models"):

    1. some λ gives LoRA + KFAC (main curvature size) a target similarity ≥ 95 % of plain LoRA's, a
       stock-voice retention ≥ 0.95, and a stock WER rise below plain LoRA's and below that of every
       diag point that reaches the same target similarity (none reaching it: nothing to beat);
    2. the KFAC curve dominates the diag curve and the L2-SP curve on (retention, target similarity).

    Each part carries the numbers it rests on; missing data fails it with the reason."""
    out: dict[str, Any] = {"main_size": main_size, "parts": {}}

    def of(method: str, size: int | None) -> list[Mapping[str, Any]]:
        return [
            p
            for p in points
            if p["method"] == method
            and (size is None or p.get("curvature_size") == size)
            and p.get("target_sim") is not None
        ]

    lora, kfac, diag = of("lora", None), of("lora+kfac", main_size), of("lora+diag", main_size)
    part: dict[str, Any] = {"met": False}
    if lora and kfac:
        lora_target = float(np.mean([p["target_sim"] for p in lora]))
        lora_rise = [p["stock_wer_rise"] for p in lora if p.get("stock_wer_rise") is not None]
        lora_rise_mean = float(np.mean(lora_rise)) if lora_rise else None
        need = GOAL_TARGET_SHARE * lora_target
        diag_rises = [
            p["stock_wer_rise"]
            for p in diag
            if p["target_sim"] >= need and p.get("stock_wer_rise") is not None
        ]
        diag_best = min(diag_rises) if diag_rises else None
        candidates = []
        for p in sorted(kfac, key=lambda p: p.get("lambda") or 0):
            ret, rise = p.get("stock_retention"), p.get("stock_wer_rise")
            checks = {
                "target": p["target_sim"] >= need,
                "retention": ret is not None and ret >= GOAL_RETENTION,
                "wer_below_lora": rise is not None and lora_rise_mean is not None and rise < lora_rise_mean,
                "wer_below_diag": rise is not None and (diag_best is None or rise < diag_best),
            }
            candidates.append(
                {
                    "lambda": p.get("lambda"),
                    "target_sim": p["target_sim"],
                    "retention": ret,
                    "wer_rise": rise,
                    "checks": checks,
                    "met": all(checks.values()),
                }
            )
        part.update(
            met=any(c["met"] for c in candidates),
            lora_target_sim=lora_target,
            target_needed=need,
            lora_wer_rise=lora_rise_mean,
            diag_best_wer_rise=diag_best,
            kfac=candidates,
            lambdas_meeting=[c["lambda"] for c in candidates if c["met"]],
        )
    else:
        part["why"] = "needs plain LoRA and LoRA + KFAC at the main curvature size"
    out["parts"]["kfac_at_lora_target"] = part
    kfac_curve = curve(points, "lora+kfac", main_size, x="stock_retention")
    for other in ("lora+diag", "lora+l2sp"):
        other_curve = curve(points, other, main_size if other != "lora+l2sp" else None, x="stock_retention")
        entry: dict[str, Any] = {
            "met": dominates(kfac_curve, other_curve),
            "kfac": kfac_curve,
            other: other_curve,
        }
        if not kfac_curve or not other_curve:
            entry["why"] = "needs both curves"
        out["parts"][f"kfac_dominates_{other.split('+')[1]}"] = entry
    out["met"] = all(p["met"] for p in out["parts"].values())
    return out
