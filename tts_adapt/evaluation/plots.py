"""Report figures (matplotlib, Agg backend): the Pareto plot, per-speaker similarity bars and per-voice
retention bars."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def place_labels(
    ax, labels: Sequence[tuple[str, float, float]], fontsize: float = 8, colors: Sequence[Any] | None = None
) -> list:
    """Annotate each ``(text, x, y)`` 5 points above and right of its point, moved down a line at a
    time where it would cover a label already placed: systems whose points coincide (say, two methods
    that have not moved the model) get a readable stack of labels instead of one blot."""
    renderer = ax.figure.canvas.get_renderer()
    ax.autoscale_view()
    placed, out = [], []
    for k, (text, x, y) in enumerate(labels):
        dy = 5.0
        for _ in range(len(labels) + 1):
            note = ax.annotate(
                text,
                (x, y),
                textcoords="offset points",
                xytext=(5, dy),
                fontsize=fontsize,
                color=colors[k] if colors is not None else None,
            )
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
            note.remove()
            dy -= fontsize + 2
        placed.append(box)
        out.append(note)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated in both coordinates (higher is better), sorted by x."""
    idx = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 >= x and y2 >= y) and (x2 > x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            idx.append(i)
    return sorted(idx, key=lambda i: points[i][0])


def pareto_plot(systems: Sequence[dict[str, Any]], metric: str = "sim") -> bytes:
    """Target vs held-out similarity, one point per system, with 95 % intervals and the Pareto front.

    ``systems``: dicts with ``label``, ``role``, ``target`` and ``heldout`` estimates (``mean/low/high``).
    """
    return png_bytes(pareto_figure(systems, metric))


def pareto_figure(systems: Sequence[dict[str, Any]], metric: str = "sim"):
    """The figure of :func:`pareto_plot`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    pts, usable, labels = [], [], []
    for s in systems:
        t, h = s.get("target"), s.get("heldout")
        if not t or not h:
            continue
        gt = s["role"] == "ground_truth"
        ax.errorbar(
            h["mean"],
            t["mean"],
            xerr=[[h["mean"] - h["low"]], [h["high"] - h["mean"]]],
            yerr=[[t["mean"] - t["low"]], [t["high"] - t["mean"]]],
            fmt="*" if gt else ("s" if s["role"] == "base" else "o"),
            ms=11 if gt else 7,
            capsize=3,
            color="gold" if gt else None,
            mec="black" if gt else None,
            label=s["label"],
        )
        labels.append((s["label"], h["mean"], t["mean"]))
        if not gt:
            pts.append((h["mean"], t["mean"]))
            usable.append(s)
    front = pareto_front(pts)
    if len(front) > 1:
        ax.plot(
            [pts[i][0] for i in front],
            [pts[i][1] for i in front],
            "--",
            color="grey",
            lw=1,
            label="Pareto front",
        )
    ax.set_xlabel(f"held-out speakers: {metric} (zero-shot, retained ability)")
    ax.set_ylabel(f"target speaker: {metric}")
    ax.set_title("Adaptation vs forgetting")
    ax.grid(alpha=0.3)
    place_labels(ax, labels)
    ax.legend(fontsize=7, loc="best")
    return fig


def speaker_bars(per_speaker: dict[str, dict[str, float]], metric: str = "sim") -> bytes:
    """Grouped bars: one group per speaker, one bar per system. ``per_speaker[system][speaker] = value``."""
    plt = _pyplot()
    systems = list(per_speaker)
    speakers = sorted({spk for d in per_speaker.values() for spk in d})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(speakers) * max(1, len(systems)) / 2 + 2), 4.2))
    width = 0.8 / max(1, len(systems))
    x = np.arange(len(speakers))
    for k, name in enumerate(systems):
        vals = [per_speaker[name].get(spk, np.nan) for spk in speakers]
        ax.bar(x + (k - (len(systems) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(
        speakers, rotation=45 if len(speakers) > 8 else 0, ha="right" if len(speakers) > 8 else "center"
    )
    ax.set_ylabel(metric)
    ax.set_xlabel("speaker")
    ax.set_title(f"Per-speaker {metric}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(4, len(systems)))
    return png_bytes(fig)


def voice_retention_bars(per_voice: dict[str, dict[str, dict[str, float]]]) -> bytes:
    """Stock-voice identity retention per voice, one bar per adapted system, with the 95 % interval over
    sentences as an error bar and 1.0 (the base itself) as a line.

    ``per_voice[system][voice] = {"mean", "low", "high"}``; voices keep their first system's order.
    """
    plt = _pyplot()
    systems = list(per_voice)
    voices: list[str] = []
    for d in per_voice.values():
        voices += [v for v in d if v not in voices]
    n_bars = len(voices) * max(1, len(systems))
    # many bars (all 28 voices, several systems) lie down, one row per voice, so the page need not shrink
    # a figure dozens of inches wide into an unreadable strip
    horizontal = n_bars > 40
    if horizontal:
        fig, ax = plt.subplots(figsize=(7.5, 0.16 * n_bars + 1.6))
    else:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * n_bars + 2), 4.2))
    width = 0.8 / max(1, len(systems))
    x = np.arange(len(voices))
    lows = [1.0]
    for k, name in enumerate(systems):
        est = [per_voice[name].get(v) or {} for v in voices]
        mean = np.array([e.get("mean", np.nan) for e in est], dtype=float)
        low = np.array([e.get("low", np.nan) for e in est], dtype=float)
        high = np.array([e.get("high", np.nan) for e in est], dtype=float)
        err = np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])
        offset = x + (k - (len(systems) - 1) / 2) * width
        if horizontal:
            ax.barh(offset, mean, width, xerr=err, capsize=2, label=name)
        else:
            ax.bar(offset, mean, width, yerr=err, capsize=2, label=name)
        lows += [float(v) for v in low if np.isfinite(v)]
    bottom = min(lows)
    limits = (max(-1.0, bottom - 0.1 * (1.0 - bottom) - 0.01), 1.005)
    label = "identity retention (cosine to the base clip)"
    if horizontal:
        ax.set_xlim(*limits)
        ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_yticks(x)
        ax.set_yticklabels(voices)
        ax.invert_yaxis()  # the first voice on top, as in the per-voice table
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_ylim(*limits)
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_xticks(x)
        ax.set_xticklabels(
            voices, rotation=60 if len(voices) > 6 else 0, ha="right" if len(voices) > 6 else "center"
        )
        ax.set_ylabel(label)
        ax.set_xlabel("stock voice")
        ax.grid(axis="y", alpha=0.3)
    ax.set_title("Stock-voice identity retention (1 = the base model's own clip)")
    ax.legend(fontsize=7, ncol=min(4, len(systems)), loc="lower left" if horizontal else "best")
    return png_bytes(fig)


def lambda_pareto_plot(
    curves: dict[str, list[tuple[float, float, Any]]],
    singles: dict[str, tuple[float, float]] | None = None,
    base: tuple[float, float] | None = None,
    xlabel: str = "held-out voices: similarity (zero-shot ability kept)",
    title: str = "Adaptation vs forgetting over λ (labels: λ)",
) -> bytes:
    """Target vs held-out similarity with one curve per method through its λ values (labelled), single
    points for methods without λ (full, linear, LoRA) and the base model as a square.

    ``curves[label] = [(heldout, target, lambda), ...]`` (drawn in λ order)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 5.4))
    marks = []
    for label, pts in curves.items():
        pts = sorted(pts, key=lambda p: float(p[2]))
        (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=5, lw=1.3, label=label)
        marks += [(f"{float(lam):g}", x, y, line.get_color()) for x, y, lam in pts]
    for label, (x, y) in (singles or {}).items():
        ax.plot([x], [y], "D", ms=7, label=label)
    if base is not None:
        ax.plot([base[0]], [base[1]], "s", ms=9, color="black", label="base")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("target voice: similarity")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    place_labels(ax, [(t, x, y) for t, x, y, _ in marks], fontsize=6, colors=[c for *_, c in marks])
    ax.legend(fontsize=7, loc="best")
    return png_bytes(fig)


def lambda_curves_plot(
    series: dict[str, list[tuple[float, dict[str, float | None]]]],
    metrics: Sequence[tuple[str, str]],
    references: dict[str, dict[str, float]] | None = None,
) -> bytes:
    """One panel per metric against λ (log scale), one line per method; ``references[name][metric]``
    are drawn as horizontal lines (the base model, plain LoRA)."""
    plt = _pyplot()
    n = len(metrics)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, (key, title) in zip(axes[0], metrics, strict=True):
        for label, pts in series.items():
            pts = sorted(
                (float(lam), v.get(key)) for lam, v in pts if v.get(key) is not None and float(lam) > 0
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=4, label=label)
        for name, vals in (references or {}).items():
            if vals.get(key) is not None:
                ax.axhline(vals[key], ls="--", lw=1, color="grey")
                ax.annotate(
                    name,
                    (0.01, vals[key]),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    color="grey",
                    va="bottom",
                )
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def prediction_plot(pairs: dict[str, list[tuple[float, float]]], rho: dict[str, float]) -> bytes:
    """Measured held-out loss increase against each curvature's predicted ½·vec(ΔW)ᵀ H vec(ΔW), one panel
    per curvature, with Spearman's ρ in the title (the prediction's scale is free; its order is not)."""
    plt = _pyplot()
    n = max(1, len(pairs))
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.6), squeeze=False)
    for ax, (label, pts) in zip(axes[0], pairs.items(), strict=False):
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", ms=4)
            if all(p[0] > 0 for p in pts):
                ax.set_xscale("log")
        r = rho.get(label)
        ax.set_title(
            f"{label}: ρ = {r:.2f}" if r is not None and np.isfinite(r) else f"{label}: ρ = –", fontsize=10
        )
        ax.set_xlabel("predicted ½·vec(ΔW)ᵀ H vec(ΔW)")
        ax.set_ylabel("held-out loss increase")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def voice_retention_dots(per_voice: dict[str, dict[str, float]], title: str = "") -> bytes:
    """Stock-voice retention per voice as one row of markers (one marker per system), lowest voice on
    top: 28 voices and several systems stay one readable page high. ``per_voice[system][voice] = mean``;
    the voices are ordered by their lowest value over the systems."""
    plt = _pyplot()
    systems = list(per_voice)
    voices = sorted(
        {v for d in per_voice.values() for v in d},
        key=lambda v: min(d.get(v, np.inf) for d in per_voice.values()),
    )
    fig, ax = plt.subplots(figsize=(8.6, 0.24 * len(voices) + 1.4))
    y = np.arange(len(voices))
    markers = "os^vDP*X<>"
    for k, name in enumerate(systems):
        vals = [per_voice[name].get(v, np.nan) for v in voices]
        ax.plot(vals, y, markers[k % len(markers)], ms=5, alpha=0.85, label=name)
    ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    ax.axvline(0.95, color="tab:red", lw=0.8, ls=":")
    ax.set_yticks(y)
    ax.set_yticklabels(voices, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("identity retention (cosine to the base model's clip; dotted: 0.95)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "Stock-voice retention per voice", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the rows, hiding none
    fig.tight_layout()
    return png_bytes(fig)
