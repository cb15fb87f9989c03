"""Seeded, vectorised bootstrap confidence intervals for means and paired ratios of means.

Systems are evaluated on the same seeded items, so the ratio adapted/base is bootstrapped *paired*
(resampling items, not systems independently), which gives honest, narrower intervals for retention.

Utterances of one speaker are not independent: with ``groups`` (the speaker of each item) the bootstrap
is two-level, resampling speakers with replacement and then each drawn speaker's utterances with
replacement, so the interval reflects how few speakers there are. A ratio of means over the same items
is a ratio of sums, which is how corpus WER (errors / words) is estimated.
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


def _two_level_means(
    values: np.ndarray, groups: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``[n_boot, k]`` item means over two-level resamples: groups with replacement, then, independently
    for every drawn slot, that group's items with replacement."""
    labels, inverse = np.unique(groups, return_inverse=True)
    g = len(labels)
    k = values.shape[1]
    slot_sums = np.empty((g, n_boot, g, k))  # [group, replicate, slot, column]
    sizes = np.empty(g)
    for i in range(g):
        members = values[inverse == i]
        sizes[i] = len(members)
        idx = rng.integers(0, len(members), size=(n_boot, g, len(members)))
        slot_sums[i] = members[idx].sum(axis=2)
    chosen = rng.integers(0, g, size=(n_boot, g))  # the groups drawn into each slot
    replicate = np.arange(n_boot)[:, None]
    slot = np.arange(g)[None, :]
    sums = slot_sums[chosen, replicate, slot].sum(axis=1)  # [n_boot, k]
    counts = sizes[chosen].sum(axis=1)
    return sums / counts[:, None]


def _replicates(values: np.ndarray, groups, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if groups is None:
        return _resample_means(values, n_boot, rng)
    return _two_level_means(values, np.asarray(groups), n_boot, rng)


def bootstrap_mean(
    values, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = 0.95, groups=None
) -> Estimate:
    """Mean with a percentile bootstrap interval; NaNs (failed items) are dropped first.

    ``groups`` (one label per value, e.g. the speaker) makes the bootstrap two-level.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(x)
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape != x.shape:
            raise ValueError(f"groups needs one label per value, got {groups.size} for {x.size}")
        groups = groups[keep]
    x = x[keep]
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if x.size == 1:
        return Estimate(float(x[0]), float(x[0]), float(x[0]), 1)
    means = _replicates(x[:, None], groups, n_boot, seed)[:, 0]
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return Estimate(float(x.mean()), float(lo), float(hi), int(x.size))


def bootstrap_ratio(
    numerator,
    denominator,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    groups=None,
) -> Estimate:
    """``mean(numerator) / mean(denominator)`` over paired items, with a paired bootstrap interval.

    Equal to ``sum(numerator) / sum(denominator)``: with errors and reference words per utterance this
    is corpus WER. ``groups`` makes the bootstrap two-level (speakers, then their utterances).
    """
    a = np.asarray(numerator, dtype=np.float64).reshape(-1)
    b = np.asarray(denominator, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape != a.shape:
            raise ValueError(f"groups needs one label per item, got {groups.size} for {a.size}")
        groups = groups[keep]
    a, b = a[keep], b[keep]
    if a.size == 0 or b.mean() == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), int(a.size))
    ratio = float(a.mean() / b.mean())
    if a.size == 1:
        return Estimate(ratio, ratio, ratio, 1)
    means = _replicates(np.stack([a, b], axis=1), groups, n_boot, seed)
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
