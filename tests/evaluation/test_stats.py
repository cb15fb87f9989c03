import numpy as np
import pytest

from tts_adapt.evaluation.stats import bootstrap_mean, bootstrap_ratio


def test_bootstrap_mean_interval_is_seeded_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    a, b = bootstrap_mean(small, seed=1), bootstrap_mean(small, seed=1)
    assert a == b
    assert a.low < a.mean < a.high
    big = bootstrap_mean(large, seed=1)
    assert (big.high - big.low) < (a.high - a.low) / 4
    assert big.low < 1.0 < big.high


def test_bootstrap_mean_drops_nan_and_handles_tiny_samples():
    e = bootstrap_mean([1.0, float("nan"), 3.0])
    assert e.n == 2 and e.mean == 2.0
    assert bootstrap_mean([]).n == 0
    one = bootstrap_mean([0.5])
    assert (one.mean, one.low, one.high) == (0.5, 0.5, 0.5)


def test_paired_ratio_is_tighter_than_unpaired_noise_suggests():
    rng = np.random.default_rng(0)
    item_effect = rng.normal(0.0, 1.0, 200)  # large between-item variation shared by both systems
    base = 5.0 + item_effect
    adapted = 0.9 * base + rng.normal(0.0, 0.01, 200)
    r = bootstrap_ratio(adapted, base, seed=0)
    assert r.mean == pytest.approx(0.9, abs=0.01)
    assert r.high - r.low < 0.01
    with pytest.raises(ValueError):
        bootstrap_ratio([1, 2], [1, 2, 3])
