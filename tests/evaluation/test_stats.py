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


def test_two_level_bootstrap_matches_exact_enumeration():
    """Oracle: the two-level bootstrap distribution enumerated exactly. Two speakers with two
    utterances each: 2^2 speaker draws x (2^2 utterance draws)^2 slots = 64 equally likely outcomes."""
    import itertools

    from tts_adapt.evaluation.stats import _two_level_means

    values = {"a": [0.0, 1.0], "b": [10.0, 14.0]}
    outcomes = []
    for spk in itertools.product("ab", repeat=2):
        for inner in itertools.product(itertools.product(range(2), repeat=2), repeat=2):
            picked = [values[s][i] for s, draw in zip(spk, inner) for i in draw]
            outcomes.append(np.mean(picked))
    exact = np.array(outcomes)
    x = np.array([0.0, 1.0, 10.0, 14.0])[:, None]
    groups = np.array(["a", "a", "b", "b"])
    reps = _two_level_means(x, groups, 200_000, np.random.default_rng(0))[:, 0]
    assert reps.mean() == pytest.approx(exact.mean(), abs=0.05)
    assert reps.var() == pytest.approx(exact.var(), rel=0.02)
    # with strong speaker effects, resampling utterances as if independent understates the spread
    rng = np.random.default_rng(0)
    spk = np.repeat(np.arange(5), 20)
    y = rng.normal(0, 1, 5)[spk] + rng.normal(0, 0.1, 100)
    flat = bootstrap_mean(y, n_boot=2000, seed=0)
    nested = bootstrap_mean(y, n_boot=2000, seed=0, groups=spk)
    assert nested.mean == flat.mean
    assert (nested.high - nested.low) > 3 * (flat.high - flat.low)


def test_ratio_of_means_is_the_pooled_rate_and_checks_group_labels():
    errors, words = [1, 0, 6], [10, 2, 8]
    r = bootstrap_ratio(errors, words, n_boot=500, groups=["s1", "s1", "s2"])
    assert r.mean == pytest.approx(7 / 20)  # corpus WER, not the mean of 0.1, 0, 0.75
    assert r.low <= r.mean <= r.high
    with pytest.raises(ValueError, match="one label per"):
        bootstrap_ratio(errors, words, groups=["s1"])
    with pytest.raises(ValueError, match="one label per"):
        bootstrap_mean([1.0, 2.0], groups=["s1"])
