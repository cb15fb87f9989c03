"""Evaluation statistics: corpus WER, speaker-level intervals, profiles without the prompt.

Conventions cited: WER as reported for ASR and TTS intelligibility is a corpus rate, total word edits
over total reference words (NIST sclite); utterances of one speaker are correlated, so the interval
resamples speakers and then their utterances (two-level/cluster bootstrap).
"""

from __future__ import annotations

import numpy as np
import pytest

from tts_adapt.evaluation.protocol import EvalConfig, SpeakerProfiles, SystemEntry, aggregate, error_counts
from tts_adapt.evaluation.testset import TestCase


def _row(system, speaker, uid, errors, words):
    return {
        "system": system,
        "set": "heldout",
        "id": uid,
        "speaker": speaker,
        "wer": errors / words,
        "wer_errors": errors,
        "wer_words": words,
    }


def test_wer_is_errors_over_words_and_retention_pairs_errors():
    rows = [
        _row("base", "s1", "u1", 1, 20),
        _row("base", "s1", "u2", 1, 2),
        _row("base", "s2", "u3", 2, 8),
        _row("adapted", "s1", "u1", 2, 20),
        _row("adapted", "s1", "u2", 1, 2),
        _row("adapted", "s2", "u3", 4, 8),
    ]
    never_called = object()  # aggregation reads rows only; no system synthesises here
    entries = [SystemEntry("base", "base", never_called), SystemEntry("adapted", "adapted", never_called)]
    agg = aggregate(rows, entries, EvalConfig(metrics=("wer",), n_boot=300))
    base = agg["systems"]["base"]["sets"]["heldout"]["wer"]
    assert base["mean"] == pytest.approx(4 / 30)  # not the mean of 0.05, 0.5, 0.25
    assert base["mean"] != pytest.approx(np.mean([0.05, 0.5, 0.25]))
    assert agg["systems"]["adapted"]["sets"]["heldout"]["wer"]["mean"] == pytest.approx(7 / 30)
    assert agg["systems"]["adapted"]["retention"]["wer"]["mean"] == pytest.approx(7 / 4)
    assert agg["systems"]["base"]["per_speaker"]["heldout"]["s1"]["wer"] == pytest.approx(2 / 22)


def test_error_counts_are_word_and_character_edits():
    c = error_counts("The cat sat.", "the cat sad on")
    assert (c["wer_errors"], c["wer_words"]) == (2, 3)  # one substitution, one insertion
    assert c["cer_chars"] == len("the cat sat")


class _OneHot:
    """Embeds each path as its own one-hot vector, so a profile shows exactly which recordings it holds
    (the real speaker encoder gives no such read-back)."""

    def __init__(self, paths):
        self.index = {p: i for i, p in enumerate(sorted(paths))}

    def embed(self, paths):
        out = np.zeros((len(paths), len(self.index)))
        for k, p in enumerate(paths):
            out[k, self.index[p]] = 1.0
        return out


def test_profile_never_holds_the_prompt_nor_the_recording():
    def case(uid, prompt):
        return TestCase("heldout", uid, "s1", "t", f"{uid}.wav", prompt, f"{prompt}.wav", 0, None)

    cases = [case("a", "b"), case("b", "c"), case("c", "d")]
    paths = {"a.wav", "b.wav", "c.wav", "d.wav"}
    scorers = type("S", (), {"speaker": _OneHot(paths)})()
    profiles = SpeakerProfiles(cases, scorers)
    index = scorers.speaker.index
    for c in cases:
        held = {p for p, i in index.items() if profiles.profile[c.key][i] > 0}
        assert held == paths - {c.audio_path, c.prompt_path}
    lone = [TestCase("heldout", "x", "s2", "t", "x.wav", "y", "y.wav", 0, None)]
    scorers = type("S", (), {"speaker": _OneHot({"x.wav", "y.wav"})})()
    assert SpeakerProfiles(lone, scorers).profile == {}  # nothing left: no profile, not the prompt


class _Table:
    """A speaker encoder that returns the embedding the test assigns to each path."""

    def __init__(self, table):
        self.table = {p: np.asarray(v, dtype=np.float64) for p, v in table.items()}

    def embed(self, paths):
        return np.stack([self.table[p] for p in paths])


def test_similarity_margin_by_hand():
    """``sim`` against the case's own leave-one-out profile, ``sim_other`` the mean over the *other*
    speakers of the same set (never the case's own, never another set's), ``sim_margin = sim - sim_other``.

    Speaker A's recordings are all (1, 0, 0), C's all (0, 0, 1); B's are (0, 1, 0), (0, 0, 1) and
    (0, .6, .8), so B's profile is their mean (0, 1.6, 1.8) / 3 normalised: (0, 1.6, 1.8) / sqrt(5.8).
    The synthesis for case a1 embeds as e = (.6, .8, 0): sim = e . (1, 0, 0) = .6; e . B = .8 * 1.6 /
    sqrt(5.8) = .53150; e . C = 0; sim_other = (.53150 + 0) / 2 = .26575; margin = .33425. Speaker D
    (set "target", profile (1, 1, 0) / sqrt(2), e . D = .98995) is not among the others."""
    from tts_adapt.evaluation.protocol import score_cases

    unit = {
        "a": [(1, 0, 0)] * 3,
        "b": [(0, 1, 0), (0, 0, 1), (0, 0.6, 0.8)],
        "c": [(0, 0, 1)] * 3,
    }
    table = {f"{s}{i}.wav": v for s, vs in unit.items() for i, v in enumerate(vs, 1)}
    table.update(
        {"d1.wav": (0.6**0.5, 0.4**0.5, 0), "d2.wav": (0.4**0.5, 0.6**0.5, 0), "out.wav": (0.6, 0.8, 0)}
    )
    cases = [
        TestCase(
            "heldout", f"{s}{i}", s.upper(), "t", f"{s}{i}.wav", f"{s}{i + 1}", f"{s}{i + 1}.wav", 0, None
        )
        for s in "abc"
        for i in (1, 2)
    ] + [TestCase("target", "d1", "D", "t", "d1.wav", "d2", "d2.wav", 0, None)]
    scorers = type("S", (), {"speaker": _Table(table), "cfg": EvalConfig(metrics=("sim",))})()
    profiles = SpeakerProfiles(cases, scorers)
    entry = SystemEntry("adapted", "adapted", object())
    row = score_cases(entry, cases[:1], ["out.wav"], scorers, profiles, progress=False)[0]
    b_dot = 0.8 * 1.6 / np.sqrt(5.8)
    assert row["sim"] == pytest.approx(0.6)
    assert row["sim_ref"] == pytest.approx(0.6)  # the prompt a2 is (1, 0, 0) too
    assert row["sim_other"] == pytest.approx((b_dot + 0.0) / 2)
    assert row["sim_margin"] == pytest.approx(0.6 - (b_dot + 0.0) / 2)
    assert row["sim_margin"] == pytest.approx(0.33425, abs=5e-5)


def _exact_quantiles(outcomes, level=0.95):
    a = (1 - level) / 2
    return np.quantile(np.asarray(outcomes), [a, 1 - a])


def test_evaluation_intervals_are_speaker_level_by_enumeration():
    """Two speakers with two utterances each, values s1: 0, 1 and s2: 10, 14. The two-level bootstrap
    (speakers with replacement, then each drawn speaker's utterances) has 2^2 x (2^2)^2 = 64 equally
    likely outcomes; resampling utterances as if independent has 4^4 = 256. Enumerated, their 95 %
    intervals are [0.25, 13] and [0.5, 12]: the evaluation must report the first, for a mean metric
    and for a corpus rate (errors / words, here 20 words per utterance)."""
    import itertools

    from tts_adapt.evaluation.protocol import metric_estimate

    values = {"s1": [0.0, 1.0], "s2": [10.0, 14.0]}
    two_level = []
    for spk in itertools.product(values, repeat=2):
        for draws in itertools.product(itertools.product(range(2), repeat=2), repeat=2):
            two_level.append(np.mean([values[s][i] for s, d in zip(spk, draws) for i in d]))
    flat_values = [v for vs in values.values() for v in vs]
    flat = [np.mean(c) for c in itertools.product(flat_values, repeat=4)]
    speaker_level, utterance_level = _exact_quantiles(two_level), _exact_quantiles(flat)
    assert tuple(speaker_level) == (0.25, 13.0) and tuple(utterance_level) == (0.5, 12.0)

    rows = [
        {"speaker": s, "id": f"{s}-{i}", "sim": v, "wer": v / 20, "wer_errors": v, "wer_words": 20}
        for s, vs in values.items()
        for i, v in enumerate(vs)
    ]
    cfg = EvalConfig(metrics=("sim",), n_boot=20000, seed=0)
    sim = metric_estimate(rows, "sim", cfg)
    assert sim["mean"] == pytest.approx(6.25)
    assert (sim["low"], sim["high"]) == pytest.approx(tuple(speaker_level), abs=1e-9)
    wer = metric_estimate(rows, "wer", cfg)
    assert wer["mean"] == pytest.approx(6.25 / 20)
    assert (wer["low"], wer["high"]) == pytest.approx(tuple(speaker_level / 20), abs=1e-9)
