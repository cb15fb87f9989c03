"""The experiment's outputs: ``summary.json``/``.csv``/``.md``, figures, and the results page.

Every number on the results page, including whether the goal was met, is computed here from the run's
files; nothing is written by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import GOAL_RETENTION, GOAL_TARGET_SHARE, curve, goal_check, rank_correlations, seed_means
from .collect import collect_runs, write_rows_csv

POINT_FIELDS = (
    "target_sim",
    "target_per",
    "target_mcd",
    "heldout_sim",
    "heldout_per",
    "retention_sim",
    "retention_per",
    "loss_increase",
)
PRIOR_METHODS = ("lora+l2sp", "lora+diag", "lora+kfac", "lora+ekfac")
SINGLE_METHODS = ("full", "linear", "lora")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** (-digits) or v == 0 else f"{v:.2e}"
    return str(v)


def _ci(v: Any, ci: Sequence[float] | None, digits: int = 3) -> str:
    s = _fmt(v, digits)
    return f"{s} [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci and s != "–" else s


def _points_table(points: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Markdown table of the points (seed means; the interval of a single run, ± sd over several)."""
    by_run = {r["run"]: r for r in rows}
    header = [
        "method", "curv. n", "λ", "seeds", "target sim ↑", "target PER ↓", "target MCD ↓",
        "held-out sim ↑", "held-out PER ↓", "retention sim (speakers 95 %)", "Δ held-out loss",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in points:
        one = by_run[p["runs"][0]] if len(p["runs"]) == 1 else None

        def cell(f: str, p: dict[str, Any] = p, one: dict[str, Any] | None = one) -> str:
            if one is not None:
                return _ci(one.get(f), one.get(f + "_ci"))
            sd = p.get(f + "_sd")
            return _fmt(p.get(f)) + (f" ± {_fmt(sd)}" if sd is not None else "")

        lines.append(
            "| "
            + " | ".join(
                [
                    p["method"],
                    _fmt(p.get("curvature_size")),
                    _fmt(p.get("lambda"), 4) if p.get("lambda") is None else f"{p['lambda']:g}",
                    ",".join(str(s) for s in p["seeds"]) or "–",
                    cell("target_sim"),
                    cell("target_per"),
                    cell("target_mcd"),
                    cell("heldout_sim"),
                    cell("heldout_per"),
                    cell("retention_sim"),
                    _fmt(p.get("loss_increase"), 4)
                    + (
                        f" ± {_fmt(p['loss_increase_sd'], 4)}"
                        if p.get("loss_increase_sd") is not None
                        else ""
                    ),
                ]
            )
            + " |"
        )
    return lines


def _figures(
    data: dict[str, Any], points: list[dict[str, Any]], main_size: int | None, rho: dict
) -> dict[str, bytes]:
    from ..evaluation.plots import lambda_curves_plot, lambda_pareto_plot, prediction_plot

    base = data.get("base") or {}
    curves: dict[str, list] = {}
    series: dict[str, list] = {}
    for method in PRIOR_METHODS:
        size = None if method == "lora+l2sp" else main_size
        chosen = [
            p for p in points if p["method"] == method and (size is None or p.get("curvature_size") == size)
        ]
        label = method if size is None else f"{method} (n={size})"
        pts = [(p["heldout_sim"], p["target_sim"], p["lambda"]) for p in chosen
               if p.get("heldout_sim") is not None and p.get("target_sim") is not None]  # fmt: skip
        if pts:
            curves[label] = pts
        if chosen:
            series[label] = [(p["lambda"], p) for p in chosen if p.get("lambda") is not None]
    singles = {
        p["method"]: (p["heldout_sim"], p["target_sim"])
        for p in points
        if p["method"] in SINGLE_METHODS
        and p.get("heldout_sim") is not None
        and p.get("target_sim") is not None
    }
    figs: dict[str, bytes] = {}
    if curves or singles:
        b = (base["heldout_sim"], base["target_sim"]) if base.get("heldout_sim") is not None else None
        figs["pareto_lambda"] = lambda_pareto_plot(curves, singles, b)
    if series:
        refs = {"base": {"target_sim": base.get("target_sim"), "heldout_sim": base.get("heldout_sim")}}
        lora = next((p for p in points if p["method"] == "lora"), None)
        if lora:
            refs["lora"] = {k: lora.get(k) for k in POINT_FIELDS}
        figs["lambda_curves"] = lambda_curves_plot(
            series,
            [
                ("target_sim", "target similarity ↑"),
                ("heldout_sim", "held-out similarity ↑"),
                ("target_per", "target PER ↓"),
                ("loss_increase", "held-out loss increase ↓"),
            ],
            refs,
        )
    pairs = {
        label: [(r["predicted"][label], r["loss_increase"]) for r in data["rows"]
                if label in (r.get("predicted") or {}) and r.get("loss_increase") is not None]
        for label in rho
    }  # fmt: skip
    if pairs:
        figs["prediction"] = prediction_plot(pairs, {k: v["spearman"] for k, v in rho.items()})
    return figs


def _goal_lines(goal: dict[str, Any]) -> list[str]:
    p1 = goal["parts"]["retention_at_lora_target"]
    verdict = "**met**" if goal["met"] else "**not met**"
    lines = [
        f"Goal: at ≥ {GOAL_TARGET_SHARE:.0%} of plain LoRA's target similarity, LoRA + KFAC (curvature of "
        f"{goal['main_size']} utterances) keeps ≥ {GOAL_RETENTION:.0%} of the base model's held-out "
        f"similarity, and the KFAC curve dominates the diag and L2-SP curves on the Pareto plot: {verdict}.",
        "",
    ]
    if "lora_target_sim" in p1:
        lines.append(
            f"- Retention at LoRA's target similarity: {'met' if p1['met'] else 'not met'}. Plain LoRA's "
            f"target similarity {p1['lora_target_sim']:.3f} (needed ≥ {p1['target_needed']:.3f}); "
            "base held-out "
            f"similarity {p1['base_heldout_sim']:.3f}. KFAC by λ: "
            + "; ".join(
                f"λ={k['lambda']:g}: target {k['target_sim']:.3f}, retention {_fmt(k['retention'])}"
                for k in p1["kfac"]
            )
            + "."
        )
    else:
        lines.append(f"- Retention at LoRA's target similarity: not met ({p1.get('why')}).")
    for key in ("kfac_dominates_diag", "kfac_dominates_l2sp"):
        part = goal["parts"][key]
        other = key.rsplit("_", 1)[1]
        lines.append(
            f"- KFAC dominates {other}: {'yes' if part['met'] else 'no'} (KFAC points {len(part['kfac'])}, "
            f"{other} points {len(part['lora+' + other])}; a curve dominates another when every point of the "
            "other is matched or beaten in both similarities by one of its points, and beaten somewhere)."
        )
    return lines


def _timing_lines(timing: dict[str, Any], estimate: dict[str, Any] | None, quick: bool) -> list[str]:
    total = sum(t["seconds"] for t in timing.values())
    lines = [f"Measured wall time of this run: {total / 60:.1f} min (sum of the stages' times).", ""]
    lines += ["| stage | count | seconds (total) | seconds (mean) |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['count']} | {v['seconds']:.1f} | {v['mean']:.1f} |" for k, v in timing.items()]
    if estimate and quick:
        lines += [
            "",
            f"**Estimate, not a measurement:** the full recipe ({estimate['full_adaptations']} adaptations) "
            f"would take about **{estimate['seconds'] / 3600:.1f} hours** on this machine "
            "*with the model of this "
            "run*, scaling each kind of stage measured above by the full recipe's stage count and work "
            "(steps, curvature utterances, test cases):",
            "",
            "| stage | count (full) | estimated seconds | how |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['count']} | {v['seconds']:.0f} | {v['how']} |"
            for k, v in estimate["families"].items()
        ]
        lines += [
            "",
            "The shipped model is larger than the micro model: multiply the training and curvature rows by "
            "the ratio of their step times (`python benchmarks/bench_adapt_step.py` on both models).",
        ]
    return lines


def summarise_experiment(
    eval_dir: str | os.PathLike,
    loss_dir: str | os.PathLike,
    out: str | os.PathLike,
    main_size: int | None = None,
    stages: str | os.PathLike | None = None,
    results_page: str | os.PathLike | None = None,
    command: str = "",
    note: str = "",
) -> list[Path]:
    """Write the summary files (and the results page); returns the paths written."""
    from ..utils.io import atomic_path, write_json, write_text
    from .timing import estimate_full, stage_times

    out = Path(out)
    data = collect_runs(eval_dir, loss_dir)
    rows = data["rows"]
    if not rows:
        raise ValueError(f"{eval_dir}: no adapted system has been evaluated yet")
    sizes = sorted({r["curvature_size"] for r in rows if r.get("curvature_size")})
    main_size = main_size or (max(sizes) if sizes else None)
    points = seed_means(rows, POINT_FIELDS)
    base = data.get("base") or {}
    goal = goal_check(points, base.get("heldout_sim"), main_size)
    rho = rank_correlations(rows)
    timing = stage_times(stages) if stages else {}
    adapt_s = [r["adapt_seconds"] for r in rows if r.get("adapt_seconds")]
    quick = "--quick" in command
    estimate = (
        estimate_full(timing, float(np.mean(adapt_s)) if adapt_s else None) if timing and quick else None
    )
    summary = {
        "rows": rows,
        "points": points,
        "base": base,
        "ground_truth": data.get("ground_truth"),
        "main_size": main_size,
        "goal": goal,
        "rank_correlation": rho,
        "timing": timing,
        "estimate": estimate,
        "command": command,
        "heldout_speakers": data.get("heldout_speakers"),
        "not_evaluated": data.get("not_evaluated"),
        "pareto": {m: curve(points, m, None if m == "lora+l2sp" else main_size) for m in PRIOR_METHODS},
    }
    written = []
    write_json(out / "summary.json", summary)
    written.append(out / "summary.json")
    cols = ["run", "method", "curvature_size", "lambda", "seed", *POINT_FIELDS, "loss_base", "loss_adapted"]
    write_rows_csv(out / "summary.csv", rows, cols)
    written.append(out / "summary.csv")
    figs = _figures(data, points, main_size, rho)

    def page(md_path: Path, files: Path, title: str) -> str:
        for key, png in figs.items():
            with atomic_path(files / f"{key}.png", suffix=".png") as tmp:
                tmp.write_bytes(png)
            written.append(files / f"{key}.png")
        rel = lambda key: os.path.relpath(files / f"{key}.png", md_path.parent)  # noqa: E731
        lines = [f"# {title}", ""]
        if note:
            lines += [note, ""]
        if quick:
            lines += [
                "> **This page comes from the `--quick` variant: a randomly initialised micro model on a "
                "tiny "
                "synthetic corpus.** Every stage and number is real, but the model knows nothing, so the "
                "numbers say nothing about the method. The published run replaces it with the shipped base "
                "model (`--set base=...`).",
                "",
            ]
        if command:
            lines += ["Command:", "", "```bash", command, "```", ""]
        gt = data.get("ground_truth") or {}
        lines += [
            f"Held-out voices: {len(data.get('heldout_speakers') or [])}; base model: target similarity "
            f"{_fmt(base.get('target_sim'))}, held-out similarity {_fmt(base.get('heldout_sim'))}, held-out "
            f"PER {_fmt(base.get('heldout_per'))}, held-out pre-training loss {_fmt(base.get('loss'), 4)}; "
            f"recordings (ceiling): target similarity {_fmt(gt.get('target_sim'))}, held-out similarity "
            f"{_fmt(gt.get('heldout_sim'))}.",
            "",
            "## Goal",
            "",
            *_goal_lines(goal),
            "",
            "## Results",
            "",
            "One row per setting (mean over its seeds; with one seed, the run's bootstrap 95 % interval; "
            "with "
            "several, ± the standard deviation over seeds). Retention = adapted ÷ base held-out similarity, "
            "its interval from resampling held-out *speakers*. Δ held-out loss = the pre-training objective "
            "on held-out pre-training utterances after minus before adaptation.",
            "",
            *_points_table(points, rows),
            "",
        ]
        if "pareto_lambda" in figs:
            lines += [
                "## Target vs held-out similarity over λ",
                "",
                f"![Pareto plot]({rel('pareto_lambda')})",
                "",
            ]
        if "lambda_curves" in figs:
            lines += ["## Per-method curves", "", f"![Curves over λ]({rel('lambda_curves')})", ""]
        lines += [
            "## Does the curvature predict forgetting?",
            "",
            "Spearman's rank correlation over all adapted runs between each curvature's prediction "
            "½·vec(ΔW)ᵀ H vec(ΔW) (ΔW of the layers the curvature covers) and the measured increase of the "
            "held-out pre-training loss:",
            "",
            "| curvature | Spearman ρ | runs |",
            "|---|---|---|",
            *[f"| {k} | {_fmt(v['spearman'])} | {v['n']} |" for k, v in rho.items()],
            "",
        ]
        if "prediction" in figs:
            lines += [f"![Predicted vs measured]({rel('prediction')})", ""]
        if timing:
            lines += ["## Time", "", *_timing_lines(timing, estimate, quick), ""]
        return "\n".join(lines)

    md = out / "summary.md"
    write_text(md, page(md, out, "Forgetting experiment: summary"))
    written.append(md)
    if results_page:
        rp = Path(results_page)
        write_text(rp, page(rp, rp.parent / f"{rp.stem}_files", "Results: the forgetting experiment"))
        written.append(rp)
    return written
