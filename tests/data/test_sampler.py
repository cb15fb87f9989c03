"""Batch samplers: the official random batches (RandomBatchSampler) and length-grouped ones
(FrameBudgetBatchSampler): sizes, coverage, determinism per epoch, resumption.

Official semantics (yl4579/StyleTTS2 ``meldataset.build_dataloader``, used by ``train_finetune.py``):
``DataLoader(shuffle=True, drop_last=True)``: every epoch a new permutation, batches of exactly
``batch_size``, the last ``n % batch_size`` utterances of the permutation left out.
"""

from __future__ import annotations

import numpy as np
import pytest

from tts_adapt.data import FrameBudgetBatchSampler, RandomBatchSampler


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


def test_random_batches_are_the_official_shuffled_full_batches():
    n, b = 43, 8
    s = RandomBatchSampler(n, b, seed=0)
    seen = set()
    for epoch in range(6):
        batches = s.batches(epoch)
        assert len(batches) == n // b and all(len(x) == b for x in batches)
        flat = [i for x in batches for i in x]
        assert len(set(flat)) == len(flat) == n - n % b  # disjoint; the last partial batch is dropped
        seen |= set(flat)
    assert seen == set(range(n))  # what an epoch drops changes with the epoch
    assert s.batches(0) == RandomBatchSampler(n, b, seed=0).batches(0)
    assert s.batches(0) != RandomBatchSampler(n, b, seed=1).batches(0)


def test_random_batches_change_every_epoch_where_length_groups_repeat():
    """The reason length grouping is not the default: with at most 50 x batch utterances (an hour of a
    new voice) it serves the same groups every epoch, only reordered; the official batches differ."""
    lengths = np.random.default_rng(0).integers(80, 1200, size=40).tolist()
    grouped = FrameBudgetBatchSampler(lengths, 10**9, seed=0, max_batch_size=8)
    groups = [sorted(map(tuple, map(sorted, grouped.batches(e)))) for e in range(3)]
    assert groups[0] == groups[1] == groups[2]
    random = RandomBatchSampler(len(lengths), 8, seed=0)
    sets = [sorted(map(tuple, map(sorted, random.batches(e)))) for e in range(3)]
    assert sets[0] != sets[1] != sets[2]


def test_random_batches_resume_and_refuse_a_corpus_smaller_than_a_batch():
    s = RandomBatchSampler(20, 3, seed=0)
    full = s.batches(4)
    s.set_epoch(4, position=2)
    assert list(s) == full[2:] and len(s) == len(full) - 2
    with pytest.raises(ValueError, match="outside"):
        s.set_epoch(4, position=len(full) + 1)
    with pytest.raises(ValueError, match="fewer than one batch of 8"):
        RandomBatchSampler(5, 8)
