"""Seeded, vectorised bootstrap confidence intervals for means and paired ratios of means.

Systems are evaluated on the same seeded items, so the ratio adapted/base is bootstrapped *paired*
(resampling items, not systems independently), which gives honest, narrower intervals for retention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_BOOTSTRAP = 2000


@dataclass
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _resample_means(
    values: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 1 << 22
) -> np.ndarray:
    """``[n_boot, k]`` column means of ``values [n, k]`` over index resamples, in memory-bounded chunks."""
    n = values.shape[0]
    rows = max(1, chunk // max(1, n))
    out = []
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        out.append(values[idx].mean(axis=1))
    return np.concatenate(out, axis=0)


def bootstrap_mean(values, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95) -> Estimate:
    """Mean with a percentile bootstrap interval; NaNs (failed items) are dropped first."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if x.size == 1:
        return Estimate(float(x[0]), float(x[0]), float(x[0]), 1)
    means = _resample_means(x[:, None], n_boot, np.random.default_rng(seed))[:, 0]
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return Estimate(float(x.mean()), float(lo), float(hi), int(x.size))


def bootstrap_ratio(
    numerator, denominator, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> Estimate:
    """``mean(numerator) / mean(denominator)`` over paired items, with a paired bootstrap interval."""
    a = np.asarray(numerator, dtype=np.float64).reshape(-1)
    b = np.asarray(denominator, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size == 0 or b.mean() == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), int(a.size))
    ratio = float(a.mean() / b.mean())
    if a.size == 1:
        return Estimate(ratio, ratio, ratio, 1)
    means = _resample_means(np.stack([a, b], axis=1), n_boot, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = means[:, 0] / means[:, 1]
    ratios = ratios[np.isfinite(ratios)]
    q = (1 - level) / 2
    lo, hi = np.quantile(ratios, [q, 1 - q])
    return Estimate(ratio, float(lo), float(hi), int(a.size))


def bootstrap_ratio_by_group(
    numerator, denominator, groups, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> Estimate:
    """``mean(numerator) / mean(denominator)`` with whole groups (speakers) resampled, not items.

    Sentences of one speaker are correlated (they share a voice the model either kept or lost), so an
    interval that treats them as independent is too narrow when the question is about speakers. Each
    resample draws speakers with replacement and takes ``Σ num / Σ den`` over all their items. ``n`` of the
    result is the number of groups. With one item per group this is :func:`bootstrap_ratio` exactly.
    """
    a = np.asarray(numerator, dtype=np.float64).reshape(-1)
    b = np.asarray(denominator, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    if not (a.shape == b.shape == g.shape):
        raise ValueError(f"grouped bootstrap needs equal lengths, got {a.size}, {b.size} and {g.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, g = a[keep], b[keep], g[keep]
    if a.size == 0 or b.sum() == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    names, inverse = np.unique(g, return_inverse=True)
    sums = np.zeros((names.size, 2))
    np.add.at(sums, inverse, np.stack([a, b], axis=1))
    ratio = float(a.sum() / b.sum())
    if names.size == 1:
        return Estimate(ratio, ratio, ratio, 1)
    totals = _resample_means(sums, n_boot, np.random.default_rng(seed))  # means of sums: same ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = totals[:, 0] / totals[:, 1]
    ratios = ratios[np.isfinite(ratios)]
    q = (1 - level) / 2
    lo, hi = np.quantile(ratios, [q, 1 - q])
    return Estimate(ratio, float(lo), float(hi), int(names.size))


def rank(values) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (what Spearman's coefficient uses)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks; pairs with a NaN are
    dropped; NaN when fewer than 3 pairs remain or a side is constant."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"spearman needs equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3:
        return float("nan")
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")
