"""The voice-pack forgetting experiment's page (docs/results-kokoro.md): every number computed here from
the run folder of ``recipes/forgetting_kokoro.yaml``; nothing on it is written by hand.

Per target: the table of points (seed means), the Pareto plot of target similarity against stock-voice
retention (one curve per prior over λ), retention per stock voice, how well each curvature's quadratic
ranks the measured rise of the held-out loss, a Listen table, and the goal check. A run still in
progress gets a page too: it says how many of the planned points have run and what the rest will take
at the measured stage times.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analysis import GOAL_RETENTION, GOAL_TARGET_SHARE, rank_correlations, seed_means, stock_goal_check
from .collect import write_rows_csv
from .results import _ci, _fmt
from .stock_runs import collect_stock_runs

POINT_FIELDS = (
    "target_sim",
    "target_wer",
    "target_mos",
    "target_mcd",
    "stock_retention",
    "stock_wer_rise",
    "stock_kept",
    "loss_increase",
)
PRIORS = ("l2sp", "diag", "kfac", "ekfac")
ADAPT_FAMILIES = ("voice", "baselines", "prior", "prior-seeds", "prior-size")


def read_plan(run: Path) -> dict[str, Any]:
    path = run / "stages" / "plan.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def progress(run: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Planned and finished stages per family, with the measured seconds of the finished ones."""
    from .timing import stage_times

    fams: dict[str, dict[str, Any]] = {}
    done = {p.name[: -len(".done.json")] for p in (run / "stages").glob("*.done.json")}
    for s in plan.get("stages", []):
        f = fams.setdefault(s["family"], {"planned": 0, "done": 0})
        f["planned"] += 1
        f["done"] += s["tag"] in done
    times = stage_times(run / "stages") if (run / "stages").is_dir() else {}
    for fam, t in times.items():
        fams.setdefault(fam, {"planned": 0, "done": 0}).update(seconds=t["seconds"], mean=t["mean"])
    left = sum(
        (f["planned"] - f["done"]) * f["mean"]
        for k, f in fams.items()
        if f.get("mean") and f["planned"] and k != "summary"
    )
    unknown = sorted(
        k for k, f in fams.items() if f["planned"] > f["done"] and not f.get("mean") and k != "summary"
    )
    adapt = [fams.get(k, {}) for k in ADAPT_FAMILIES]
    return {
        "families": fams,
        "adapt_planned": sum(f.get("planned", 0) for f in adapt),
        "adapt_done": sum(f.get("done", 0) for f in adapt),
        "seconds_left_known": left,
        "families_unmeasured": unknown,
    }


def main_lambdas(plan: dict[str, Any]) -> dict[str, float]:
    values = plan.get("values") or {}
    out = {}
    for prior in PRIORS:
        v = values.get(f"main_lambda_{prior}")
        if v is not None:
            out[prior] = float(v)
    return out


def _one(
    rows: Sequence[dict[str, Any]], method: str, lam: float | None = None, size: Any = "any"
) -> dict | None:
    """The seed-0 (else lowest-seed) run of a method at λ ``lam`` (and curvature size)."""
    chosen = [
        r
        for r in rows
        if r["method"] == method
        and (lam is None or (r.get("lambda") is not None and float(r["lambda"]) == lam))
        and (size == "any" or r.get("curvature_size") == size)
    ]
    return min(chosen, key=lambda r: r.get("seed") or 0) if chosen else None


def featured_runs(rows: Sequence[dict[str, Any]], lambdas: dict[str, float], main_size: int | None) -> dict:
    """``{label: row}``: the voice pack, full, LoRA and each prior at its main λ (seed 0)."""
    out = {}
    for method in ("voice", "full", "lora"):
        r = _one(rows, method)
        if r:
            out[method] = r
    for prior in PRIORS:
        lam = lambdas.get(prior)
        size = None if prior == "l2sp" else main_size
        r = _one(rows, f"lora+{prior}", lam, size) if lam is not None else None
        if r:
            out[f"lora+{prior} λ={lam:g}"] = r
    return out


METHOD_ORDER = ("voice", "full", "lora", *(f"lora+{p}" for p in PRIORS))


def _point_order(p: dict[str, Any]) -> tuple:
    m = p["method"]
    rank = METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER)
    return (rank, m, -(p.get("curvature_size") or 0), float(p.get("lambda") or 0))


def _points_table(
    points: list[dict[str, Any]], rows: list[dict[str, Any]], base: dict | None, truth: dict | None
) -> list[str]:
    by_run = {r["run"]: r for r in rows}
    header = [
        "method",
        "curv. n",
        "λ",
        "seeds",
        "target sim ↑",
        "target WER ↓",
        "target MOS ↑",
        "stock retention ↑",
        "stock WER rise ↓",
        "voices kept",
        "Δ held-out loss",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def fixed(name: str, r: dict[str, Any], kept: str = "–") -> str:
        return (
            f"| {name} | – | – | – | {_ci(r.get('target_sim'), r.get('target_sim_ci'))} | "
            f"{_fmt(r.get('target_wer'))} | {_fmt(r.get('target_mos'), 2)} | – | – | {kept} | – |"
        )

    if truth:
        lines.append(fixed("target's recordings", truth))
    if base:
        lines.append(fixed(f"base: {base.get('voice') or base.get('name')}", base))
    for p in points:
        one = by_run[p["runs"][0]] if len(p["runs"]) == 1 else None

        def cell(f: str, digits: int = 3, p: dict[str, Any] = p, one: dict | None = one) -> str:
            if one is not None:
                return _ci(one.get(f), one.get(f + "_ci"), digits)
            sd = p.get(f + "_sd")
            return _fmt(p.get(f), digits) + (f" ± {_fmt(sd, digits)}" if sd is not None else "")

        n_voices = max((by_run[r].get("stock_voices") or 0) for r in p["runs"])
        k = p.get("stock_kept")
        kept = f"{int(k) if k is not None and float(k).is_integer() else _fmt(k, 1)}/{n_voices}"
        lines.append(
            "| "
            + " | ".join(
                [
                    p["method"],
                    _fmt(p.get("curvature_size")),
                    "–" if p.get("lambda") is None else f"{float(p['lambda']):g}",
                    ",".join(str(s) for s in p["seeds"]) or "–",
                    cell("target_sim"),
                    cell("target_wer"),
                    cell("target_mos", 2),
                    cell("stock_retention"),
                    cell("stock_wer_rise"),
                    kept if p.get("stock_kept") is not None else "–",
                    cell("loss_increase", 4),
                ]
            )
            + " |"
        )
    return lines


def _goal_lines(goal: dict[str, Any]) -> list[str]:
    p1 = goal["parts"]["kfac_at_lora_target"]
    lines = [f"**Goal {'met' if goal['met'] else 'not met'}** (curvature size {goal.get('main_size')}).", ""]
    if "why" in p1:
        lines.append(f"1. Not computable yet: {p1['why']}.")
    else:
        lines.append(
            f"1. {'Met' if p1['met'] else 'Not met'}: plain LoRA reaches target similarity "
            f"{_fmt(p1['lora_target_sim'])} (so {GOAL_TARGET_SHARE:.0%} of it is "
            f"{_fmt(p1['target_needed'])}) "
            f"with a stock WER rise of {_fmt(p1['lora_wer_rise'])}; the best diag point at that target "
            f"similarity rises by {_fmt(p1['diag_best_wer_rise'])}. LoRA + KFAC, per λ (target sim, "
            f"retention ≥ {GOAL_RETENTION}, WER rise below LoRA's and diag's):"
        )
        for c in p1["kfac"]:
            ok = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in c["checks"].items())
            lines.append(
                f"   - λ = {float(c['lambda']):g}: target {_fmt(c['target_sim'])}, retention "
                f"{_fmt(c['retention'])}, WER rise {_fmt(c['wer_rise'])} ({ok})"
            )
    for n, (key, title) in enumerate((("kfac_dominates_diag", "diag"), ("kfac_dominates_l2sp", "L2-SP")), 2):
        part = goal["parts"][key]
        if "why" in part:
            lines.append(f"{n}. KFAC's curve dominates {title}'s: not computable yet ({part['why']}).")
        else:
            lines.append(
                f"{n}. KFAC's curve {'dominates' if part['met'] else 'does not dominate'} {title}'s "
                f"(points as (retention, target sim): KFAC {_pts(part['kfac'])}; {title} "
                f"{_pts(next(v for k, v in part.items() if k.startswith('lora+')))})."
            )
    return lines


def _pts(pts: Sequence[Sequence[float]]) -> str:
    return ", ".join(f"({a:.3f}, {b:.3f})" for a, b in pts) or "none"


def _write_png(path: Path, data: bytes) -> None:
    from ..utils.io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        tmp.write_bytes(data)


def _figures(target: str, points, rows, base, featured, main_size, rho, files: Path) -> dict[str, Path]:
    from ..evaluation.plots import lambda_pareto_plot, prediction_plot, voice_retention_dots

    written = {}
    curves = {}
    for prior in PRIORS:
        size = None if prior == "l2sp" else main_size
        pts = [
            (p["stock_retention"], p["target_sim"], p["lambda"])
            for p in points
            if p["method"] == f"lora+{prior}"
            and (size is None or p.get("curvature_size") == size)
            and p.get("stock_retention") is not None
            and p.get("target_sim") is not None
            and p.get("lambda") is not None
        ]
        if pts:
            curves[f"lora+{prior}" + ("" if size is None else f" (n={size})")] = pts
    singles = {
        p["method"]: (p["stock_retention"], p["target_sim"])
        for p in points
        if p["method"] in ("voice", "full", "lora") and p.get("stock_retention") is not None
    }
    if curves or singles:
        png = lambda_pareto_plot(
            curves,
            singles,
            (1.0, base["target_sim"]) if base and base.get("target_sim") is not None else None,
            xlabel="stock voices: identity retention (1 = as before)",
            title=f"{target}: new voice vs stock voices over λ (labels: λ)",
        )
        written["pareto"] = files / f"{target}-pareto.png"
        _write_png(written["pareto"], png)
    per_voice = {
        label: {v: e["mean"] for v, e in r["per_voice_retention"].items()}
        for label, r in featured.items()
        if r.get("per_voice_retention") and label != "voice"
    }
    if per_voice:
        written["voices"] = files / f"{target}-voices.png"
        _write_png(written["voices"], voice_retention_dots(per_voice, f"{target}: retention per stock voice"))
    pairs = {
        label: [
            (r["predicted"][label], r["loss_increase"])
            for r in rows
            if label in (r.get("predicted") or {}) and r.get("loss_increase") is not None
        ]
        for label in rho
    }
    if any(pairs.values()):
        written["prediction"] = files / f"{target}-prediction.png"
        _write_png(written["prediction"], prediction_plot(pairs, {k: v["spearman"] for k, v in rho.items()}))
    return written


def _listen(
    target: str, eval_dir: Path, featured: dict, base: dict | None, voices: Sequence[str], files: Path
) -> dict[str, Any] | None:
    """One sentence of the target: its reference recording, the base's and each featured run's clip, and
    each run's clips of the listen voices, converted to OGG Vorbis under ``files/listen/<target>/``."""
    import soundfile as sf

    from ..evaluation.rows import read_rows
    from ..utils.io import atomic_path

    rows = read_rows(eval_dir / "utterances.jsonl")
    truth = sorted(
        (r for r in rows if r.get("role") == "ground_truth" and r.get("set") == "target"),
        key=lambda r: r["id"],
    )
    if not truth:
        truth = sorted((r for r in rows if r.get("set") == "target"), key=lambda r: r["id"])
    if not truth:
        return None
    case = truth[0]["id"]
    out_dir = files / "listen" / target

    def stored(audio: str) -> Path:  # rows keep audio paths relative to the evaluation folder
        return Path(audio) if Path(audio).is_absolute() else eval_dir / audio

    def convert(src: Path, name: str) -> Path | None:
        if not src.is_file():
            return None
        dst = out_dir / f"{name}.ogg"
        if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
            return dst  # made from this clip already (an Ogg stream's serial is random: no churn)
        audio, sr = sf.read(str(src), dtype="float32")
        with atomic_path(dst, suffix=".ogg") as tmp:
            sf.write(str(tmp), audio, sr, format="OGG", subtype="VORBIS")
        return dst

    def clip(system: str) -> Path | None:
        hit = next(
            (r for r in rows if r.get("system") == system and r.get("set") == "target" and r["id"] == case),
            None,
        )
        return convert(stored(hit["audio"]), _safe(system)) if hit and hit.get("audio") else None

    table: dict[str, Any] = {"text": truth[0].get("text", ""), "reference": None, "systems": {}, "stock": {}}
    gt = next((r for r in truth if r["id"] == case and r.get("role") == "ground_truth"), None)
    if gt and gt.get("audio"):
        table["reference"] = convert(stored(gt["audio"]), "reference")
    names = ([base["name"]] if base else []) + [r["run"] for r in featured.values()]
    labels = (["base"] if base else []) + list(featured)
    for label, system in zip(labels, names, strict=True):
        table["systems"][label] = clip(system)
        table["stock"][label] = {
            v: convert(eval_dir / "audio" / system / "stock" / _safe(v) / "00.wav", f"{_safe(system)}-{v}")
            for v in voices
        }
    return table


def _listen_notice(run: Path, targets: Sequence[str], folder: Path) -> Path | None:
    """``NOTICE.md`` beside the Listen clips: whose voice each target's reference is, under which licence
    (from the target corpus's ``speakers.json``), with the licence files the engine ships copied along."""
    import shutil

    from ..utils.io import atomic_path, write_text

    lines = [
        "# The Listen clips",
        "",
        "Every clip except `reference.ogg` is Kokoro-82M's speech (weights Apache-2.0, hexgrad), from the",
        "base model or a model adapted by the forgetting experiment. Each target's `reference.ogg` is one",
        "of its held-out sentences, spoken by the engine voice below:",
        "",
    ]
    found = False
    for target in targets:
        meta_path = run / "data" / target / "speakers.json"
        if not meta_path.is_file() or not (folder / target).is_dir():
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for voice in meta.get("voices", []):
            lic = voice.get("license") or {}
            lines.append(
                f"- `{target}/`: {voice.get('description', voice.get('name'))} "
                f"({meta['engine']['name']} voice `{voice.get('name')}`); "
                f"licence: {lic.get('name', 'unknown')}: {lic.get('summary', '')} "
                f"(source: {lic.get('source', '–')})."
            )
            for rel in (meta.get("license_files") or {}).get(voice.get("speaker"), []):
                src = run / "data" / target / rel
                if src.is_file():
                    dst = folder / target / "licenses" / Path(rel).name
                    with atomic_path(dst, suffix=dst.suffix) as tmp:
                        shutil.copyfile(src, tmp)
                    lines.append(f"  Licence text: `{dst.relative_to(folder)}`.")
            found = True
    if not found:
        return None
    path = folder / "NOTICE.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def summarise_stock_experiment(
    run: str | os.PathLike,
    targets: Sequence[str],
    main_size: int | None = None,
    listen_voices: Sequence[str] = ("af_heart", "bf_emma", "am_adam"),
    results_page: str | os.PathLike | None = None,
    command: str = "",
    model: Callable[[], tuple[str, str]] | None = None,
) -> list[Path]:
    """Write ``RUN/summary/summary.json``, ``summary.csv`` and the results page; returns the paths.

    ``model()`` gives the base model's ``(weights, config)`` for the curvature predictions; it is called
    only when some evaluated run has an adapted folder to predict for."""
    from ..utils.io import write_json, write_text
    from .predict import predict_runs

    run = Path(run)
    plan = read_plan(run)
    lambdas = main_lambdas(plan)
    page = Path(results_page) if results_page else run / "summary" / "results.md"
    files = page.parent / f"{page.stem}_files"
    files.mkdir(parents=True, exist_ok=True)
    status = progress(run, plan)
    curvatures = {"l2sp": "l2sp"} | {
        p: str(run / "curvature" / f"{p}-{main_size}.safetensors") for p in PRIORS if p != "l2sp"
    }
    rel = lambda p: os.path.relpath(p, page.parent)  # noqa: E731
    summary: dict[str, Any] = {"targets": {}, "progress": status, "main_lambdas": lambdas, "command": command}
    sections: list[str] = []
    all_rows = []
    written: list[Path] = []
    for target in targets:
        eval_dir, loss_dir = run / target / "eval", run / target / "loss"
        if not (eval_dir / "aggregates.json").is_file():
            sections += [f"## {target}", "", "Not evaluated yet.", ""]
            continue
        data = collect_stock_runs(eval_dir, loss_dir)
        adapted = {r["run"]: run / target / "adapt" / r["run"] for r in data["rows"]}
        adapted = {k: v for k, v in adapted.items() if (v / "manifest.json").is_file()}
        predicted = (
            predict_runs(*model(), adapted, curvatures, run / target / "predictions")
            if model and adapted
            else {}
        )
        rows = [dict(r, target=target, predicted=predicted.get(r["run"], {})) for r in data["rows"]]
        all_rows += rows
        points = sorted(seed_means(rows, POINT_FIELDS), key=_point_order)
        goal = stock_goal_check(points, main_size)
        rho = rank_correlations(rows)
        featured = featured_runs(rows, lambdas, main_size)
        figs = _figures(target, points, rows, data["base"], featured, main_size, rho, files)
        written += list(figs.values())
        listen = _listen(target, eval_dir, featured, data["base"], listen_voices, files)
        summary["targets"][target] = {
            "rows": rows,
            "points": points,
            "base": data["base"],
            "ground_truth": data["ground_truth"],
            "goal": goal,
            "rank_correlation": rho,
            "not_evaluated": data["not_evaluated"],
        }
        base = data["base"] or {}
        sections += [
            f"## {target}",
            "",
            f"Starts from stock voice **{base.get('voice') or base.get('name', '–')}**; {len(rows)} adapted "
            f"run{'s' if len(rows) != 1 else ''} evaluated; "
            f"{len(data['stock_voices'])} stock voices, Kokoro's held-out loss {_fmt(base.get('loss'), 4)} "
            "before adaptation.",
            "",
            "### Goal",
            "",
            *_goal_lines(goal),
            "",
            "### Table",
            "",
            *_points_table(points, rows, data["base"], data["ground_truth"]),
            "",
        ]
        if "pareto" in figs:
            sections += [
                "### Target similarity vs stock-voice retention",
                "",
                f"![Pareto]({rel(figs['pareto'])})",
                "",
            ]
        if "voices" in figs:
            sections += ["### Retention per stock voice", "", f"![Per voice]({rel(figs['voices'])})", ""]
        fell = [r for r in rows if r.get("loss_increase") is not None and r["loss_increase"] < 0]
        measured = [r for r in rows if r.get("loss_increase") is not None]
        sections += ["### Does the quadratic predict the loss rise?", ""]
        if fell:
            lowest = min(fell, key=lambda r: r["loss_increase"])
            sections += [
                f"The held-out loss on Kokoro's own speech **fell** in {len(fell)} of {len(measured)} runs "
                f"(most: {lowest['run']}, {_fmt(base.get('loss'), 3)} → "
                f"{_fmt((base.get('loss') or 0) + lowest['loss_increase'], 3)}). Scored with this "
                "objective (the recogniser's alignments, YIN F0 targets, 1.25 s crops), Kokoro's weights are "
                "not at a minimum: adaptation also fits what the objective measures in every voice. A fall "
                "is not a gain in the stock voices, and a quadratic around a point that is not a minimum "
                "predicts the curvature term only; read forgetting from the stock-voice retention above.",
                "",
            ]
        sections += [
            "Spearman's ρ over this target's runs between each curvature's ½·vec(ΔW)ᵀ H vec(ΔW) (curvature "
            f"of {main_size} utterances of Kokoro's own speech) and the measured rise of Kokoro's held-out "
            "loss on its own speech:",
            "",
            "| curvature | Spearman ρ | runs |",
            "|---|---|---|",
            *[f"| {k} | {_fmt(v['spearman'])} | {v['n']} |" for k, v in rho.items()],
            "",
        ]
        if not rho:
            sections[-3:-1] = [f"No prediction yet: no curvature file of {main_size} utterances is there."]
        if "prediction" in figs:
            sections += [f"![Prediction]({rel(figs['prediction'])})", ""]
        if listen:
            link = lambda p: f"[▶]({rel(p)})" if p else "–"  # noqa: E731
            sections += [
                "### Listen",
                "",
                f"Sentence: *{listen['text']}* Reference (the target's own recording): "
                f"{link(listen['reference'])}",
                "",
                "| system | new voice | " + " | ".join(listen_voices) + " |",
                "|---|---|" + "---|" * len(listen_voices),
            ]
            for label, clip in listen["systems"].items():
                stock = listen["stock"].get(label, {})
                sections.append(
                    f"| {label} | {link(clip)} | "
                    + " | ".join(link(stock.get(v)) for v in listen_voices)
                    + " |"
                )
            sections.append("")
    header = [
        "# Results: forgetting on Kokoro-82M",
        "",
        "Written by the summary stage of `recipes/forgetting_kokoro.yaml` from the run's files.",
        "",
    ]
    if "--quick" in command:
        header += [
            "> **This page comes from the `--quick` variant: 2 adaptation steps on a few utterances, "
            "curvature of a handful.** Every stage and number is real, but nothing was trained long enough "
            "to say anything about the methods.",
            "",
        ]
    if command:
        header += ["```bash", command, "```", ""]
    header += [
        "## Progress",
        "",
        f"{status['adapt_done']} of {status['adapt_planned']} planned adaptation points have run.",
        "",
        "| stage | planned | done | measured seconds each |",
        "|---|---|---|---|",
        *[
            f"| {k} | {f['planned']} | {f['done']} | {_fmt(f.get('mean'), 0) if f.get('mean') else '–'} |"
            for k, f in status["families"].items()
            if f["planned"] and k != "summary"
        ],
        "",
    ]
    if status["adapt_done"] < status["adapt_planned"]:
        header += [
            "At the measured times the stages still to run take about "
            f"{status['seconds_left_known'] / 3600:.1f} "
            "hours"
            + (
                f", plus the stages not yet measured ({', '.join(status['families_unmeasured'])})"
                if status["families_unmeasured"]
                else ""
            )
            + ". **Until every point has run, the goal check below is on part of the grid.**",
            "",
        ]
    notice = _listen_notice(run, targets, files / "listen")
    if notice:
        written.append(notice)
    write_text(page, "\n".join(header + sections))
    written.append(page)
    out = run / "summary"
    write_json(out / "summary.json", summary)
    cols = ["target", "run", "method", "curvature_size", "lambda", "seed", *POINT_FIELDS]
    write_rows_csv(out / "summary.csv", all_rows, cols)
    written += [out / "summary.json", out / "summary.csv"]
    return written
