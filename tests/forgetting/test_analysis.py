"""The experiment's statistics against independent computations: scipy's Spearman, brute-force
Pareto dominance over a grid, the item-level bootstrap, and goal checks worked out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tts_adapt.evaluation.stats import bootstrap_ratio, bootstrap_ratio_by_group, rank, spearman
from tts_adapt.forgetting.analysis import dominates, goal_check, rank_correlations, seed_means


@pytest.mark.parametrize("seed", range(6))
def test_spearman_matches_scipy(seed):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    x = rng.integers(0, 6, n).astype(float)  # many ties
    y = x * rng.choice([-1, 1]) + rng.normal(0, 2, n)
    if seed % 2:
        y = np.round(y)
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)
    assert np.array_equal(rank(x), scipy_stats.rankdata(x))


def test_spearman_edge_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2]))  # too few pairs
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant side
    assert spearman([1, np.nan, 2, 3, 4], [1, 5, 2, 3, 4]) == pytest.approx(1.0)  # NaN pair dropped
    with pytest.raises(ValueError, match="equal lengths"):
        spearman([1, 2, 3], [1, 2])


def test_grouped_bootstrap_is_the_item_bootstrap_with_one_item_per_group():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 1, 12), rng.uniform(0.5, 1, 12)
    item = bootstrap_ratio(a, b, 500, seed=3)
    grouped = bootstrap_ratio_by_group(a, b, [f"s{i:02d}" for i in range(12)], 500, seed=3)
    assert (grouped.mean, grouped.low, grouped.high) == pytest.approx((item.mean, item.low, item.high))
    assert grouped.n == 12


def test_grouped_bootstrap_is_wider_when_speakers_differ():
    """Five sentences per speaker that move together: resampling speakers must show that uncertainty."""
    rng = np.random.default_rng(1)
    speaker_effect = np.repeat(rng.normal(0, 0.2, 8), 5)
    den = np.full(40, 0.8)
    num = den * (0.9 + speaker_effect) + rng.normal(0, 0.01, 40)
    groups = np.repeat(np.arange(8), 5)
    item = bootstrap_ratio(num, den, 2000, seed=0)
    grouped = bootstrap_ratio_by_group(num, den, groups, 2000, seed=0)
    assert grouped.mean == pytest.approx(num.sum() / den.sum())
    assert (grouped.high - grouped.low) > 1.5 * (item.high - item.low)
    assert grouped.n == 8


def _covered(points, grid):
    """Brute force: which grid cells the union of the points' dominated quadrants covers."""
    return {(x, y) for x, y in grid if any(px >= x and py >= y for px, py in points)}


@pytest.mark.parametrize("seed", range(40))
def test_dominance_matches_region_containment(seed):
    """``a`` dominates ``b`` iff the region ``b`` dominates lies inside the region ``a`` dominates and the
    two regions differ (checked on a grid holding every coordinate that occurs)."""
    rng = np.random.default_rng(seed)
    a = [tuple(p) for p in rng.integers(0, 5, (int(rng.integers(1, 4)), 2)).astype(float)]
    b = [tuple(p) for p in rng.integers(0, 5, (int(rng.integers(1, 4)), 2)).astype(float)]
    if seed % 5 == 0:
        b = a[:1]  # a point shared with a
    xs = sorted({p[0] for p in a + b} | {-1.0})
    ys = sorted({p[1] for p in a + b} | {-1.0})
    grid = list(itertools.product(xs, ys))
    ra, rb = _covered(a, grid), _covered(b, grid)
    assert dominates(a, b) == (rb <= ra and ra != rb)


def test_dominance_examples():
    assert dominates([(1, 1)], [(0.5, 0.5)])
    assert dominates([(1, 1), (3, 0)], [(1, 1)])  # as good where b is, and reaches further
    assert not dominates([(1, 1)], [(1, 1)])  # identical curves: nobody dominates
    assert not dominates([(1, 0)], [(0, 1)])
    assert dominates([(1, 0.5), (0.5, 1)], [(0.9, 0.4), (0.5, 1)])
    assert not dominates([], [(0, 0)]) and not dominates([(0, 0)], [])


def _pt(method, lam, target, heldout, size=None):
    return {
        "method": method,
        "lambda": lam,
        "curvature_size": size,
        "target_sim": target,
        "heldout_sim": heldout,
        "runs": [f"{method}-{lam}"],
        "seeds": [0],
    }


def test_goal_check_met_and_not_met():
    base = 0.80
    points = [
        _pt("lora", None, 0.90, 0.60),
        _pt("lora+kfac", 1, 0.89, 0.70, 100),  # 0.89 >= 0.855, retention 0.875 < 0.95
        _pt("lora+kfac", 10, 0.86, 0.77, 100),  # 0.86 >= 0.855, retention 0.9625 >= 0.95: meets part 1
        _pt("lora+kfac", 100, 0.50, 0.79, 100),
        _pt("lora+diag", 1, 0.88, 0.65, 100),
        _pt("lora+diag", 10, 0.80, 0.72, 100),
        _pt("lora+l2sp", 1, 0.85, 0.66),
        _pt("lora+l2sp", 10, 0.45, 0.78),
        _pt("lora+kfac", 10, 0.99, 0.99, 10),  # another curvature size: ignored at main size 100
    ]
    goal = goal_check(points, base, 100)
    p1 = goal["parts"]["retention_at_lora_target"]
    assert p1["met"] and p1["lambdas_meeting"] == [10] and p1["target_needed"] == pytest.approx(0.855)
    assert goal["parts"]["kfac_dominates_diag"]["met"] and goal["parts"]["kfac_dominates_l2sp"]["met"]
    assert goal["met"]
    # a diag point KFAC does not reach breaks dominance, and with it the goal
    worse = points + [_pt("lora+diag", 100, 0.70, 0.795, 100)]
    goal = goal_check(worse, base, 100)
    assert not goal["parts"]["kfac_dominates_diag"]["met"] and not goal["met"]
    # without plain LoRA the goal cannot be judged: not met, with the reason
    goal = goal_check([p for p in points if p["method"] != "lora"], base, 100)
    assert not goal["met"] and "why" in goal["parts"]["retention_at_lora_target"]


def test_seed_means_and_rank_correlations():
    rows = [
        {
            "run": "a0",
            "method": "lora+kfac",
            "curvature_size": 6,
            "lambda": 1.0,
            "seed": 0,
            "target_sim": 0.5,
        },
        {
            "run": "a1",
            "method": "lora+kfac",
            "curvature_size": 6,
            "lambda": 1.0,
            "seed": 1,
            "target_sim": 0.7,
        },
        {"run": "b0", "method": "lora", "curvature_size": None, "lambda": None, "seed": 0, "target_sim": 0.9},
    ]
    (lora, kfac) = seed_means(rows, ["target_sim"])
    assert kfac["target_sim"] == pytest.approx(0.6) and kfac["target_sim_sd"] == pytest.approx(
        np.std([0.5, 0.7], ddof=1)
    )
    assert kfac["seeds"] == [0, 1] and lora["target_sim_sd"] is None
    runs = [
        {"predicted": {"kfac": p, "l2sp": 1.0}, "loss_increase": r}
        for p, r in [(1, 0.1), (2, 0.3), (3, 0.2), (4, 0.5)]
    ]
    rho = rank_correlations(runs)
    assert rho["kfac"] == {"spearman": pytest.approx(0.8), "n": 4}  # 1 - 6·2/(4·15)
    assert np.isnan(rho["l2sp"]["spearman"])
