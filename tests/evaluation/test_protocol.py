import json
import os

import pytest

from tts_adapt.evaluation.protocol import EvalConfig, SystemEntry, run_evaluation
from tts_adapt.evaluation.systems import EspeakSystem, make_system
from tts_adapt.evaluation.testset import build_test_set, read_test_set

from .conftest import needs_espeak

pytestmark = needs_espeak


def _rows(d):
    return [json.loads(x) for x in (d / "utterances.jsonl").read_text().splitlines() if x.strip()]


def test_test_set_is_seeded_and_prompts_differ(synthetic_corpus):
    from tts_adapt.data import load_corpus

    train = load_corpus(synthetic_corpus / "train-synth")
    held = load_corpus(synthetic_corpus / "test-synth")
    spk = sorted({u.speaker for u in train})[0]
    a = build_test_set(train, held, n_target=3, n_heldout_per_speaker=2, seed=0, target_speaker=spk)
    b = build_test_set(train, held, n_target=3, n_heldout_per_speaker=2, seed=0, target_speaker=spk)
    c = build_test_set(train, held, n_target=3, n_heldout_per_speaker=2, seed=1, target_speaker=spk)
    assert a == b and a != c
    assert sum(x.set == "target" for x in a) == 3
    assert {x.speaker for x in a if x.set == "heldout"} == {u.speaker for u in held}
    assert all(x.prompt_id != x.id and x.speaker == spk for x in a if x.set == "target")
    assert all(x.prompt_id != x.id for x in a)
    with pytest.raises(ValueError, match="target-speaker"):
        build_test_set(train, None)


def test_protocol_outputs(eval_dir):
    rows = _rows(eval_dir)
    cases = read_test_set(eval_dir / "test_set.jsonl")
    assert len(rows) == 3 * len(cases)
    agg = json.loads((eval_dir / "aggregates.json").read_text())
    s = agg["systems"]
    assert agg["base"] == "base"
    # real recordings are the ceiling: closer to their own speaker than any espeak voice
    for set_name in ("target", "heldout"):
        assert s["ground_truth"]["sets"][set_name]["sim"]["mean"] > s["base"]["sets"][set_name]["sim"]["mean"]
        est = s["base"]["sets"][set_name]["sim"]
        assert est["low"] <= est["mean"] <= est["high"]
    assert "mcd" not in s["ground_truth"]["sets"]["target"]
    assert s["base"]["sets"]["target"]["mcd"]["mean"] > 0
    ret = s["adapted"]["retention"]["sim"]
    mean_ratio = s["adapted"]["sets"]["heldout"]["sim"]["mean"] / s["base"]["sets"]["heldout"]["sim"]["mean"]
    assert ret["mean"] == pytest.approx(mean_ratio, rel=1e-6)
    assert "retention" not in s["base"]
    assert set(s["base"]["per_speaker"]["heldout"]) == {c.speaker for c in cases if c.set == "heldout"}
    assert s["adapted"]["info"]["lambda"] == 0.5
    for r in rows:
        assert os.path.exists(eval_dir / r["audio"])  # relative to the evaluation folder
        assert ("dnsmos" in r) == (r["set"] == "target")  # heldout_dnsmos=False


def test_protocol_resumes_without_resynthesising(eval_dir, tmp_path):
    cases = read_test_set(eval_dir / "test_set.jsonl")
    wavs = sorted((eval_dir / "audio").rglob("*.wav"))
    mtimes = [w.stat().st_mtime_ns for w in wavs]

    class Exploding(EspeakSystem):
        def synthesize(self, text, reference, seed):  # every file exists, so this must not be called
            raise AssertionError("synthesised again")

    entries = [
        SystemEntry("ground_truth", "ground_truth"),
        SystemEntry("base", "base", Exploding("en-us+f3", 60, name="base")),
        SystemEntry(
            "adapted",
            "adapted",
            make_system("espeak:en-gb+m3:pitch=40"),
            {"method": "lora", "lambda": 0.5, "trainable_params": 1000},
        ),
    ]
    before = _rows(eval_dir)
    run_evaluation(
        entries,
        cases,
        eval_dir,
        EvalConfig(metrics=("sim", "mcd", "dnsmos"), heldout_dnsmos=False, n_boot=300),
        progress=False,
    )
    assert [w.stat().st_mtime_ns for w in wavs] == mtimes
    assert _rows(eval_dir) == before


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="per"):
        EvalConfig(metrics=("per",))
    with pytest.raises(ValueError, match="unknown metric"):
        EvalConfig(metrics=("bleu",))
    with pytest.raises(ValueError, match="role"):
        SystemEntry("x", "teacher", make_system("espeak:en-us"))
    with pytest.raises(ValueError, match="unknown system kind"):
        make_system("tacotron:foo")
    with pytest.raises(ValueError, match="key=value"):
        make_system("espeak:en-us:fast")


def test_accumulate_keeps_earlier_systems_and_speaker_level_retention(synthetic_corpus, tmp_path):
    """A grid evaluated one run per call: with ``accumulate`` the aggregates hold every run so far."""
    from tts_adapt.data import load_corpus
    from tts_adapt.evaluation.stats import bootstrap_ratio_by_group

    train = load_corpus(synthetic_corpus / "train-synth")
    held = load_corpus(synthetic_corpus / "test-synth")
    spk = sorted({u.speaker for u in train})[0]
    cases = build_test_set(train, held, n_target=2, n_heldout_per_speaker=2, seed=0, target_speaker=spk)
    cfg = EvalConfig(metrics=("sim",), n_boot=100)
    base = SystemEntry("base", "base", EspeakSystem("en-us", pitch=50))

    def entry(name, pitch):
        return SystemEntry(name, "adapted", EspeakSystem("en-us", pitch=pitch))

    run_evaluation([base, entry("a", 30)], cases, tmp_path, cfg, progress=False, accumulate=True)
    agg = run_evaluation([base, entry("b", 70)], cases, tmp_path, cfg, progress=False, accumulate=True)
    assert set(agg["systems"]) == {"base", "a", "b"}
    alone = run_evaluation([base, entry("b", 70)], cases, tmp_path / "other", cfg, progress=False)
    assert set(alone["systems"]) == {"base", "b"}
    assert agg["systems"]["b"]["retention"] == alone["systems"]["b"]["retention"]
    rows = [r for r in _rows(tmp_path) if r["set"] == "heldout"]
    a = {r["id"]: r for r in rows if r["system"] == "a"}
    b = {r["id"]: r for r in rows if r["system"] == "base"}
    ids = sorted(a)
    expected = bootstrap_ratio_by_group(
        [a[i]["sim"] for i in ids], [b[i]["sim"] for i in ids], [a[i]["speaker"] for i in ids], 100, 0
    )
    assert agg["systems"]["a"]["retention_speaker"]["sim"] == pytest.approx(expected.to_dict())


def test_reused_rows_get_the_similarities_of_the_current_test_set(synthetic_corpus, tmp_path):
    """A speaker's profile depends on which of its recordings the test set names, so rows reused from an
    evaluation with fewer cases must not keep their old similarities: they must equal a fresh run's."""
    from tts_adapt.data import load_corpus

    train = load_corpus(synthetic_corpus / "train-synth")
    spk = sorted({u.speaker for u in train})[0]
    cfg = EvalConfig(metrics=("sim",), n_boot=50)
    entries = [
        SystemEntry("ground_truth", "ground_truth"),
        SystemEntry("base", "base", EspeakSystem("en-us")),
    ]

    def sims(folder):
        return {(r["system"], r["id"]): r.get("sim") for r in _rows(folder)}

    few = build_test_set(train, None, n_target=2, seed=0, target_speaker=spk)
    more = build_test_set(train, None, n_target=4, seed=0, target_speaker=spk)
    assert {c.key for c in few} < {c.key for c in more}
    run_evaluation(entries, few, tmp_path / "grown", cfg, progress=False)
    before = sims(tmp_path / "grown")
    run_evaluation(entries, more, tmp_path / "grown", cfg, progress=False)
    run_evaluation(entries, more, tmp_path / "fresh", cfg, progress=False)
    grown, fresh = sims(tmp_path / "grown"), sims(tmp_path / "fresh")
    assert grown == pytest.approx(fresh)
    assert any(before[k] != grown[k] for k in before)  # the profiles did change
