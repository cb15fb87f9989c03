"""Speaker splits, duration filters and seeded subsets are deterministic and do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts_adapt.data import (
    SkipReport,
    Utterance,
    by_speaker,
    filter_duration,
    per_speaker_subset,
    random_subset,
    select_speakers,
    split_speakers,
)


def corpus(speakers: int = 6, per: int = 10) -> list[Utterance]:
    return [
        Utterance(f"{s}_{i}", Path(f"/c/{s}/{i}.wav"), f"text {i}", f"s{s}", duration=0.5 + 0.5 * i)
        for s in range(speakers)
        for i in range(per)
    ]


def test_split_speakers_is_disjoint_and_seeded():
    utts = corpus()
    train, held = split_speakers(utts, 2, seed=3)
    assert len(train) + len(held) == len(utts)
    assert not {u.speaker for u in train} & {u.speaker for u in held}
    assert len({u.speaker for u in held}) == 2
    assert split_speakers(list(reversed(utts)), 2, seed=3) == (train, held)
    draws = {tuple(sorted({u.speaker for u in split_speakers(utts, 2, seed=s)[1]})) for s in range(10)}
    assert len(draws) > 1
    train, held = split_speakers(utts, ["s1", "s4"])
    assert {u.speaker for u in held} == {"s1", "s4"}
    for bad in (0, 6):
        with pytest.raises(ValueError, match="cannot hold out"):
            split_speakers(utts, bad)
    with pytest.raises(ValueError, match="s9"):
        split_speakers(utts, ["s9"])
    with pytest.raises(ValueError, match="every speaker"):
        split_speakers(utts, [f"s{i}" for i in range(6)])


def test_random_subset_is_a_fixed_set_for_a_seed():
    utts = corpus()
    a = random_subset(utts, 25, seed=0)
    assert len(a) == 25 and len({u.id for u in a}) == 25
    assert random_subset(list(reversed(utts)), 25, seed=0) == a  # independent of input order
    assert random_subset(utts, 25, seed=1) != a
    assert random_subset(utts, 60, seed=0) == sorted(utts, key=lambda u: (u.speaker, u.id, str(u.audio_path)))
    with pytest.raises(ValueError, match="only 60"):
        random_subset(utts, 61)


def test_filter_duration_reports_what_it_drops():
    utts = corpus(1, 10) + [Utterance("unknown", Path("/c/u.wav"), "t", "s0", duration=None)]
    report = SkipReport()
    kept = filter_duration(utts, 1.0, 3.0, report)
    assert [u.duration for u in kept] == [1.0, 1.5, 2.0, 2.5, 3.0, None]
    assert report.counts() == {"too_short": 1, "too_long": 4}


def test_per_speaker_subset_and_select():
    utts = corpus()
    sub = per_speaker_subset(utts, 3, seed=0)
    assert {k: len(v) for k, v in by_speaker(sub).items()} == {f"s{i}": 3 for i in range(6)}
    assert per_speaker_subset(utts, 3, seed=0) == sub
    assert {u.speaker for u in select_speakers(utts, ["s2"])} == {"s2"}
    with pytest.raises(ValueError, match="s7"):
        select_speakers(utts, ["s2", "s7"])
