"""FrameBudgetBatchSampler: budget, coverage, determinism per epoch, resumption."""

from __future__ import annotations

import numpy as np
import pytest

from tts_adapt.data import FrameBudgetBatchSampler


@pytest.fixture
def lengths():
    return np.random.default_rng(0).integers(80, 1200, size=500).tolist()


def padded(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_budget_and_coverage(lengths):
    s = FrameBudgetBatchSampler(lengths, max_frames=4000, seed=0)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(len(b) * max(lengths[i] for i in b) <= 4000 for b in batches)


def test_batches_group_similar_lengths(lengths):
    s = FrameBudgetBatchSampler(lengths, max_frames=4000, seed=0)
    batches = s.batches(0)
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(lengths)).tolist()
    sizes = [len(b) for b in batches]
    random_batches, k = [], 0
    for n in sizes:
        random_batches.append(perm[k : k + n])
        k += n
    real = sum(lengths)
    assert padded(batches, lengths) / real < 1.1 < padded(random_batches, lengths) / real


def test_deterministic_per_epoch_and_seed(lengths):
    a = FrameBudgetBatchSampler(lengths, 4000, seed=3)
    b = FrameBudgetBatchSampler(lengths, 4000, seed=3)
    assert a.batches(0) == b.batches(0) and a.batches(5) == b.batches(5)
    assert a.batches(0) != a.batches(1)
    assert FrameBudgetBatchSampler(lengths, 4000, seed=4).batches(0) != a.batches(0)


def test_resume_from_a_position(lengths):
    s = FrameBudgetBatchSampler(lengths, 4000, seed=0)
    full = s.batches(2)
    s.set_epoch(2, position=7)
    assert list(s) == full[7:] and len(s) == len(full) - 7
    state = s.state_dict()
    t = FrameBudgetBatchSampler(lengths, 4000, seed=0)
    t.load_state_dict(state)
    assert list(t) == full[7:]
    with pytest.raises(ValueError, match="seed"):
        FrameBudgetBatchSampler(lengths, 4000, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="outside"):
        s.set_epoch(2, position=len(full) + 1)


def test_limits_and_oversized_items():
    lengths = [100, 100, 100, 100, 5000, 100]
    s = FrameBudgetBatchSampler(lengths, 1000, seed=0, max_batch_size=2)
    batches = s.batches(0)
    assert [4] in batches and all(len(b) <= 2 for b in batches)
    ordered = FrameBudgetBatchSampler([10, 30, 20, 40], 60, shuffle=False).batches(0)
    assert ordered == [[3], [1, 2], [0]]  # longest first, greedy: 2 * 30 <= 60, 3 * 30 > 60
    for bad in (dict(max_frames=0), dict(max_frames=10, max_batch_size=0)):
        with pytest.raises(ValueError):
            FrameBudgetBatchSampler(lengths, **bad)
    with pytest.raises(ValueError, match="positive"):
        FrameBudgetBatchSampler([10, 0], 100)
