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
