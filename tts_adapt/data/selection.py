"""Choosing which utterances to use: speaker-level splits, duration filters, seeded subsets.

Every choice is a pure function of the input list (in canonical order) and a seed, so the same
corpus and seed give the same selection on any machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from .report import SkipReport
from .utterance import Utterance, sort_utterances


def by_speaker(utts: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        groups[u.speaker].append(u)
    return dict(sorted(groups.items()))


def speakers_of(utts: Iterable[Utterance]) -> list[str]:
    return sorted({u.speaker for u in utts})


def select_speakers(utts: Iterable[Utterance], speakers: Iterable[str]) -> list[Utterance]:
    """Utterances of the given speakers; naming a speaker that is absent is an error."""
    utts = list(utts)
    wanted = set(speakers)
    missing = wanted - set(speakers_of(utts))
    if missing:
        raise ValueError(f"speaker(s) not in the corpus: {', '.join(sorted(missing))}")
    return [u for u in utts if u.speaker in wanted]


def split_speakers(
    utts: Iterable[Utterance], held_out: int | Sequence[str], seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """``(train, held_out)`` with no speaker in both.

    ``held_out`` is either a number of speakers drawn with ``seed`` or an explicit list of speakers.
    """
    utts = sort_utterances(utts)
    speakers = speakers_of(utts)
    if isinstance(held_out, int):
        if not 0 < held_out < len(speakers):
            raise ValueError(
                f"cannot hold out {held_out} of {len(speakers)} speakers (need 0 < n < {len(speakers)})"
            )
        rng = np.random.default_rng(seed)
        chosen = {speakers[i] for i in rng.choice(len(speakers), size=held_out, replace=False)}
    else:
        chosen = set(held_out)
        missing = chosen - set(speakers)
        if missing:
            raise ValueError(f"held-out speaker(s) not in the corpus: {', '.join(sorted(missing))}")
        if chosen == set(speakers):
            raise ValueError("holding out every speaker leaves nothing to train on")
    train = [u for u in utts if u.speaker not in chosen]
    held = [u for u in utts if u.speaker in chosen]
    return train, held


def filter_duration(
    utts: Iterable[Utterance],
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    report: SkipReport | None = None,
) -> list[Utterance]:
    """Keep utterances within ``[min_seconds, max_seconds]``; unknown durations are kept (checked later)."""
    out = []
    for u in utts:
        d = u.duration
        if d is not None and min_seconds is not None and d < min_seconds:
            if report is not None:
                report.skip(u.id, u.audio_path, "too_short", f"{d:.2f} s is shorter than {min_seconds} s")
            continue
        if d is not None and max_seconds is not None and d > max_seconds:
            if report is not None:
                report.skip(u.id, u.audio_path, "too_long", f"{d:.2f} s is longer than {max_seconds} s")
            continue
        out.append(u)
    return out


def random_subset(utts: Iterable[Utterance], n: int, seed: int = 0) -> list[Utterance]:
    """``n`` utterances drawn without replacement with ``seed``, returned in canonical order.

    The draw is made on the canonical order, so it does not depend on how the list was built
    ("1000 random LibriTTS utterances, seed 0" is one fixed set for one corpus).
    """
    utts = sort_utterances(utts)
    if n < 0:
        raise ValueError(f"subset size must be >= 0, got {n}")
    if n > len(utts):
        raise ValueError(f"asked for {n} utterances but only {len(utts)} are available")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(utts), size=n, replace=False))
    return [utts[i] for i in idx]


def per_speaker_subset(utts: Iterable[Utterance], n: int, seed: int = 0) -> list[Utterance]:
    """At most ``n`` utterances per speaker (seeded), for balanced evaluation sets."""
    out = []
    for i, (_, group) in enumerate(by_speaker(utts).items()):
        out.extend(group if len(group) <= n else random_subset(group, n, seed=seed + i))
    return sort_utterances(out)
