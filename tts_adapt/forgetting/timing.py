"""Measured stage times of a recipe run, and an estimate of the full recipe's wall time from them.

The estimate scales each kind of stage measured in one run (usually the quick variant) to the full
recipe: the number of stages of that kind from the recipe itself, and the work per stage by the ratio of
the variables that drive it (adaptation steps, curvature utterances, test cases, corpus size). It is an
estimate for the *same model*: the model-size factor (an adaptation step of the shipped model vs the
micro model) is reported separately, because only a run on that model can measure it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

RUN_FAMILIES = ("baselines", "l2sp", "l2sp-seeds", "prior", "prior-seeds")


def family_of(tag: str) -> str:
    """``11-prior.prior-kfac.n-6...`` -> ``prior``."""
    return re.sub(r"^\d+-", "", tag).split(".", 1)[0]


def stage_times(stages_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{family: {count, seconds, mean}}`` from a run's ``stages/*.done.json`` stamps."""
    out: dict[str, dict[str, Any]] = {}
    folder = Path(stages_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"stages folder not found: {folder}")
    for path in sorted(folder.glob("*.done.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        fam = family_of(path.name[: -len(".done.json")])
        entry = out.setdefault(fam, {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] += float(d.get("seconds", 0.0))
    for entry in out.values():
        entry["mean"] = entry["seconds"] / entry["count"]
    return out


def _counts(recipe, values: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for stage in recipe.expand(values):
        counts[stage.family] = counts.get(stage.family, 0) + 1
    return counts


def _mean_sizes(recipe, values: dict[str, str]) -> float:
    sizes = [int(s.bindings["n"]) for s in recipe.expand(values) if s.family == "curvature"]
    return sum(sizes) / max(1, len(sizes))


def _cases(v: dict[str, str]) -> float:
    heldout = len([x for x in v["heldout"].split(",") if x.strip()])
    return float(v["n_target"]) + float(v["n_heldout"]) * heldout + float(v["loss_utterances"])


def estimate_full(
    measured: dict[str, dict[str, Any]], adapt_seconds: float | None, recipe_name: str = "forgetting"
) -> dict[str, Any]:
    """Seconds of the full recipe's stages, per family, scaled from ``measured`` (a quick run).

    ``adapt_seconds``: mean wall time of the training part of one adaptation stage (from the runs'
    manifests), scaled by steps; the rest of such a stage (evaluation, loss, start-up) by test cases."""
    from ..recipes import load_recipe

    recipe = load_recipe(recipe_name)
    quick = recipe.resolve(Path("Q"), {}, "quick")
    full = recipe.resolve(Path("F"), {"base": "BASE"})
    n_quick, n_full = _counts(recipe, quick), _counts(recipe, full)
    steps = float(full["steps"]) / float(quick["steps"])
    cases = _cases(full) / _cases(quick)
    scale = {
        "corpus": (float(full["corpus_speakers"]) * float(full["corpus_utterances"]))
        / (float(quick["corpus_speakers"]) * float(quick["corpus_utterances"])),
        "curvature": _mean_sizes(recipe, full) / _mean_sizes(recipe, quick),
        "per": float(full["per_epochs"]) / float(quick["per_epochs"]),
        "base-scores": cases,
    }
    families: dict[str, Any] = {}
    total = 0.0
    for fam, count in n_full.items():
        m = measured.get(fam)
        if m is None:
            continue
        if fam in RUN_FAMILIES and adapt_seconds is not None:
            train = min(adapt_seconds, m["mean"])
            per_stage = train * steps + (m["mean"] - train) * cases
            rest = m["mean"] - train
            how = f"training {train:.1f} s × {steps:g} (steps) + rest {rest:.1f} s × {cases:.3g} (cases)"
        else:
            factor = scale.get(fam, 1.0)
            per_stage = m["mean"] * factor
            how = f"{m['mean']:.1f} s × {factor:.3g}"
        families[fam] = {
            "count": count,
            "seconds_per_stage": per_stage,
            "seconds": per_stage * count,
            "how": how,
        }
        total += per_stage * count
    return {
        "seconds": total,
        "families": families,
        "quick_counts": n_quick,
        "full_counts": n_full,
        "full_adaptations": sum(n_full.get(f, 0) for f in RUN_FAMILIES),
    }
