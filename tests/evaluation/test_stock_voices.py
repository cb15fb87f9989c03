"""Stock-voice measures: exact cosine, the nearest-own-voice check, bootstrap intervals by enumeration,
and (with Kokoro-82M) retention exactly 1.0 for an adapted model whose weights did not move."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from tts_adapt.evaluation.protocol import EvalConfig
from tts_adapt.evaluation.stock_voices import (
    StockVoices,
    exact_cosine,
    nearest_own,
    summarise,
    unit_mean,
)

from ..conftest import kokoro_voice_run


def test_exact_cosine_gives_one_for_equal_vectors_where_float32_does_not():
    """Oracle: cos(v, v) = 1 by definition. Unit float32 embeddings (what the speaker encoders return)
    dotted with themselves in float32 miss 1.0 for many vectors; the measure must not."""
    rng = np.random.default_rng(0)
    naive_misses = 0
    for _ in range(200):
        v = rng.normal(size=256).astype(np.float32)
        v /= np.linalg.norm(v)
        assert exact_cosine(v, v.copy()) == 1.0
        naive_misses += float(v @ v) != 1.0
    assert naive_misses > 0  # the float32 dot product is not the oracle
    assert exact_cosine([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    assert exact_cosine([1.0, 0.0], [-3.0, 0.0]) == -1.0
    assert math.isnan(exact_cosine([0.0, 0.0], [1.0, 0.0]))
    with pytest.raises(ValueError, match="different sizes"):
        exact_cosine([1.0], [1.0, 0.0])


def _unit(deg: float) -> np.ndarray:
    return np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))])


def test_nearest_own_on_hand_built_embeddings():
    """Base voices at 0°, 60° and 120° on a circle. Adapted: a at 10° (own at 10°, b at 50°: kept,
    margin cos10° − cos50°); b drifted to 100° (a 100°, b 40°, c 20° away: c is nearest); c at 120°
    (kept, margin cos0° − cos60° = 0.5)."""
    base = {"a": _unit(0), "b": _unit(60), "c": _unit(120)}
    adapted = {"a": _unit(10), "b": _unit(100), "c": _unit(120)}
    got = nearest_own(adapted, base)
    assert [got[v]["kept"] for v in "abc"] == [True, False, True]
    assert got["b"]["nearest"] == "c" and got["a"]["nearest"] == "a"
    assert got["a"]["margin"] == pytest.approx(math.cos(math.radians(10)) - math.cos(math.radians(50)))
    assert got["b"]["margin"] == pytest.approx(math.cos(math.radians(40)) - math.cos(math.radians(20)))
    assert got["c"]["own"] == 1.0 and got["c"]["margin"] == pytest.approx(0.5)
    # a voice exactly halfway between its own base voice and another stays kept (ties go to its own)
    assert nearest_own({"a": _unit(30)}, {"a": _unit(0), "b": _unit(60)})["a"]["kept"] is True
    # one voice alone cannot be confused with anything
    assert nearest_own({"a": _unit(40)}, {"a": _unit(0)})["a"]["kept"] is None
    with pytest.raises(ValueError, match="without a base profile"):
        nearest_own({"z": _unit(0)}, base)
    # the profile is the unit mean of a voice's clips
    assert np.allclose(unit_mean(np.stack([_unit(0), _unit(90)])), _unit(45))


def _quantile_band(outcomes: list[float], q: float, slack: float = 0.01) -> tuple[float, float]:
    """Values a Monte-Carlo percentile of this exact (equally likely) distribution may take."""
    x = np.sort(np.asarray(outcomes))
    lo = x[max(0, math.floor((q - slack) * len(x)))]
    hi = x[min(len(x) - 1, math.ceil((q + slack) * len(x)))]
    return float(lo), float(hi)


def _two_level_outcomes(items: dict[str, list[tuple[float, float]]]) -> list[float]:
    """Every equally likely two-level resample (voices, then each drawn voice's sentences) of
    ``sum(num) / sum(den)`` over ``{voice: [(num, den), ...]}``."""
    voices = sorted(items)
    outcomes = []
    for drawn in itertools.product(voices, repeat=len(voices)):
        inner = [itertools.product(items[v], repeat=len(items[v])) for v in drawn]
        for picks in itertools.product(*inner):
            flat = [p for group in picks for p in group]
            outcomes.append(sum(n for n, _ in flat) / sum(d for _, d in flat))
    return outcomes


def test_stock_intervals_match_exact_enumeration():
    """Oracle: the two-level bootstrap distribution enumerated exactly (2 voices x 2 sentences: 2^2 voice
    draws x (2^2 sentence draws)^2 = 64 equally likely outcomes). Retention values 0.90, 0.92 (voice a)
    and 0.60, 0.70 (voice b) come from 2-D embeddings at those cosines to the base clips; WER errors per
    clip (adapted, base) over 10 words each. A one-level bootstrap, or one that resampled adapted and base
    WER unpaired, gives other percentiles."""
    retention = {("a", 0): 0.90, ("a", 1): 0.92, ("b", 0): 0.60, ("b", 1): 0.70}
    errors = {("a", 0): (1, 0), ("a", 1): (2, 1), ("b", 0): (6, 1), ("b", 1): (3, 2)}
    keys = sorted(retention)
    rows, base_rows, emb, base_emb = [], [], [], []
    for voice, index in keys:
        err, base_err = errors[(voice, index)]
        common = {"voice": voice, "speaker": voice, "index": index, "wer_words": 10}
        rows.append({**common, "wer_errors": err, "wer": err / 10})
        base_rows.append({**common, "wer_errors": base_err, "wer": base_err / 10})
        # the base clip of voice a lies on the x axis, voice b's on the y axis: rivals are far apart
        axis = 0.0 if voice == "a" else 90.0
        base_emb.append(_unit(axis))
        emb.append(_unit(axis + math.degrees(math.acos(retention[(voice, index)]))))
    cfg = EvalConfig(metrics=("sim",), n_boot=20000, seed=0)
    res = summarise(rows, base_rows, ["a", "b"], np.stack(emb), np.stack(base_emb), cfg)

    assert [r["retention"] for r in rows] == pytest.approx([retention[k] for k in keys], abs=1e-12)
    exact = _two_level_outcomes({v: [(retention[(v, i)], 1.0) for i in (0, 1)] for v in "ab"})
    assert res["retention"]["mean"] == pytest.approx(np.mean(list(retention.values())))
    assert _quantile_band(exact, 0.025)[0] <= res["retention"]["low"] <= _quantile_band(exact, 0.025)[1]
    assert _quantile_band(exact, 0.975)[0] <= res["retention"]["high"] <= _quantile_band(exact, 0.975)[1]
    assert res["retention"]["low"] == pytest.approx(0.625, abs=1e-9)  # both slots voice b, 3 of 4 at 0.60

    diffs = {v: [(errors[(v, i)][0] - errors[(v, i)][1], 10) for i in (0, 1)] for v in "ab"}
    exact_rise = _two_level_outcomes(diffs)
    assert res["wer_rise"]["mean"] == pytest.approx((12 - 4) / 40)
    assert (
        _quantile_band(exact_rise, 0.025)[0] <= res["wer_rise"]["low"] <= _quantile_band(exact_rise, 0.025)[1]
    )
    assert (
        _quantile_band(exact_rise, 0.975)[0]
        <= res["wer_rise"]["high"]
        <= _quantile_band(exact_rise, 0.975)[1]
    )
    assert res["wer"]["mean"] == pytest.approx(12 / 40) and res["wer_base"]["mean"] == pytest.approx(4 / 40)

    # per voice: one-level over its two sentences, i.e. {0.60, 0.65, 0.65, 0.70} for voice b
    assert res["per_voice"]["b"]["retention"]["low"] == pytest.approx(0.60)
    assert res["per_voice"]["b"]["retention"]["high"] == pytest.approx(0.70)
    assert res["nearest_own"] == {"kept": 2, "of": 2, "not_kept": {}}
    assert res["retention_min_voice"]["voice"] == "b"


def test_voice_choice_is_checked():
    spec = StockVoices("af_heart, bm_george", ["Hello."])
    assert spec.resolve(["af_heart", "am_adam", "bm_george"]) == ["af_heart", "bm_george"]
    assert StockVoices("all", ["Hello."]).resolve(["x", "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="no voice zz_nobody"):
        StockVoices("af_heart,zz_nobody", ["Hello."]).resolve(["af_heart"])
    with pytest.raises(ValueError, match="non-empty sentence"):
        StockVoices("all", [])
    cases = StockVoices(["a", "b"], ["One.", "Two."], seed=3).cases(["a", "b"])
    assert [c.id for c in cases] == ["a/00", "a/01", "b/00", "b/01"]
    assert len({c.seed for c in cases}) == 4  # every clip its own seed, shared by every system
    assert cases == StockVoices(["a", "b"], ["One.", "Two."], seed=3).cases(["a", "b"])


# ---- the real model ----------------------------------------------------------------------------------

VOICES = ("af_heart", "bm_george")
TEXT = "Hello there."


def _voice_method_folder_and_noisy_model(kokoro_paths, out):
    """An adapted folder as method ``voice`` leaves it (stock packs + a learned voice, no weights),
    written by the trainer's own writer, whose stock voices must come back bit for bit; and the same
    model afterwards with seeded noise (10 % of each weight's spread) added to its decoder: about 0.97
    retention (1 % gives 0.9997, a new seed on unchanged weights 0.999)."""
    import torch

    folder, model = kokoro_voice_run(kokoro_paths, out, span=0.05)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(0.1 * p.std(correction=0) * torch.randn(p.shape, generator=gen))
    return folder, model


def test_unchanged_model_keeps_every_voice_exactly_and_a_perturbed_one_does_not(
    kokoro_paths, kokoro_model, tmp_path
):
    """Outside oracle: same weights, pack, text and seed give the same audio, whose embedding has cosine
    1.0 with itself; this holds only if synthesis is deterministic, the adapted folder gives back the
    stock packs bit for bit, base and adapted clips are paired by voice, text and seed, and the cosine is
    exact. Noise in the decoder must then show as retention below 1. The two adapted systems are
    evaluated one call each with ``accumulate`` (a grid's way): the second call reuses the base's clips
    and keeps the first system's results."""
    from tts_adapt.evaluation.protocol import SystemEntry, run_evaluation
    from tts_adapt.evaluation.systems import StyleTTS2System, make_system

    folder, noisy_model = _voice_method_folder_and_noisy_model(kokoro_paths, tmp_path / "voice-run")
    adapted = make_system(f"adapted:{folder}", name="voice")
    assert adapted.uses_voice_packs and adapted.speaking_voice() == "target"
    base = SystemEntry("base", "base", StyleTTS2System(kokoro_model, name="base"))
    out = tmp_path / "eval"
    cfg = EvalConfig(metrics=("sim",), n_boot=200)
    stock = StockVoices(VOICES, [TEXT], seed=0)
    first = [base, SystemEntry("voice", "adapted", adapted, adapted.info)]
    run_evaluation(first, [], out, cfg, progress=False, accumulate=True, stock=stock)
    base_clips = sorted((out / "audio" / "base").rglob("*.wav"))
    made = [p.stat().st_mtime_ns for p in base_clips]
    second = [base, SystemEntry("noisy", "adapted", StyleTTS2System(noisy_model, name="noisy"))]
    agg = run_evaluation(second, [], out, cfg, progress=False, accumulate=True, stock=stock)
    assert [p.stat().st_mtime_ns for p in base_clips] == made and len(made) == len(VOICES)
    assert set(agg["systems"]) == {"base", "voice", "noisy"}
    rows = [json.loads(x) for x in (out / "stock_voices.jsonl").read_text().splitlines()]
    voice_rows = [r for r in rows if r["system"] == "voice"]
    assert [r["retention"] for r in voice_rows] == [1.0] * len(VOICES)
    kept = agg["systems"]["voice"]["stock"]
    assert kept["retention"]["mean"] == 1.0 and kept["retention"]["low"] == 1.0
    assert kept["nearest_own"] == {"kept": 2, "of": 2, "not_kept": {}}
    assert kept["packs_changed"] == [] and kept["thread_mismatches"] == 0
    noisy = agg["systems"]["noisy"]["stock"]
    assert all(r["retention"] < 1.0 for r in rows if r["system"] == "noisy")
    assert noisy["retention"]["mean"] < 0.99
    # the noisy clips really differ from the base clips (not a scoring artefact)
    assert {r["audio_sha1"] for r in rows if r["system"] == "noisy"}.isdisjoint(
        {r["audio_sha1"] for r in rows if r["system"] == "base"}
    )


@pytest.mark.slow
def test_voice_method_run_keeps_all_stock_voices_exactly(kokoro_paths, tmp_path):
    """The whole path, as a user runs it: ``adapt --method voice`` on a flite corpus, then ``evaluate
    --target ... --stock-voices all`` (the base defaults to Kokoro): every one of the 28 stock voices
    scores retention 1.0, WER rise 0 and is nearest its own base voice; the target sentences are spoken
    in the learned voice; the report shows the stock section with three voices to listen to."""
    import shutil

    from tts_adapt.cli import main

    if shutil.which("flite") is None:
        pytest.skip("needs the flite program (Debian package flite)")
    corpus = tmp_path / "awb"
    argv = f"-q make-corpus --engine flite --voice awb --utterances 4 --test-utterances 3 --out {corpus}"
    assert main(argv.split()) == 0
    run = tmp_path / "run"
    argv = f"-q adapt --model kokoro --data {corpus / 'train-synth'}"
    argv += f" --method voice --steps 1 --voice-init am_michael --out {run} --device cpu"
    assert main(argv.split()) == 0
    out = tmp_path / "eval"
    argv = (
        f"-q evaluate --out {out} --target {corpus / 'test-synth'} --n-target 3 --system voice=adapted:{run}"
    )
    argv += " --stock-voices all --stock-sentences 1 --metrics sim,wer --bootstrap 200"
    assert main(argv.split()) == 0
    agg = json.loads((out / "aggregates.json").read_text())
    assert agg["systems"]["base"]["info"]["method"] == "Kokoro-82M"
    stock = agg["systems"]["voice"]["stock"]
    assert len(stock["voices"]) == 28
    retention = {v: pv["retention"]["mean"] for v, pv in stock["per_voice"].items()}
    assert retention == dict.fromkeys(stock["voices"], 1.0)
    assert stock["wer_rise"]["mean"] == 0.0
    assert stock["nearest_own"]["kept"] == 28
    rows = [json.loads(x) for x in (out / "utterances.jsonl").read_text().splitlines()]
    target = [r for r in rows if r["system"] == "voice"]
    # three recordings: each case's speaker profile is the one that is neither its own nor its prompt
    assert len(target) == 3 and all(r["sim"] is not None and r["sim_ref"] is None for r in target)
    assert agg["systems"]["voice"]["info"]["voice"] == "flite-awb"  # the learned voice spoke them
    assert main(["-q", "report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "id='stock_summary'" in page and "id='stock_retention'" in page
    assert page.count("<audio") == 3 * 2 + 3 * 3  # stock: 3 voices x 2 systems; target: 3 x 3 systems


def test_voice_pack_system_speaks_its_own_voice_for_a_recording_and_a_named_voice(kokoro_model, tmp_path):
    """A case's reference recording means "this case's speaker": a voice-pack model speaks its chosen (or
    default) voice for it, bit for bit what the model says for that voice; a voice name is spoken as
    named. A model with voice packs cannot do held-out speakers: the protocol says so before synthesis."""
    from pathlib import Path

    from tts_adapt.evaluation.protocol import SystemEntry, run_evaluation
    from tts_adapt.evaluation.systems import StyleTTS2System, make_system
    from tts_adapt.evaluation.testset import TestCase

    system = StyleTTS2System(kokoro_model, name="k", voice="am_adam")
    assert system.uses_voice_packs and "bf_emma" in system.voice_names()
    own, _ = kokoro_model.synthesize("Hi.", reference="am_adam", seed=5)
    via_recording, sr = system.synthesize("Hi.", Path("any/recording.wav"), 5)
    assert sr == 24000 and np.array_equal(via_recording, own)
    named, _ = system.synthesize("Hi.", "bf_emma", 5)
    assert np.array_equal(named, kokoro_model.synthesize("Hi.", reference="bf_emma", seed=5)[0])
    assert StyleTTS2System(kokoro_model, name="d").speaking_voice() == "af_heart"  # the config's default
    with pytest.raises(ValueError, match="no voice 'nobody'"):
        StyleTTS2System(kokoro_model, name="k", voice="nobody")
    with pytest.raises(ValueError, match=r"kokoro\[:voice=NAME\]"):
        make_system("kokoro:am_adam")
    with pytest.raises(ValueError, match="unknown options"):
        make_system("kokoro:speed=2")
    held = [
        TestCase("heldout", f"u{i}", "spk", "Hi.", str(tmp_path / "a.wav"), "p", str(tmp_path / "b.wav"), i)
        for i in range(2)
    ]
    with pytest.raises(ValueError, match="cannot speak held-out speakers"):
        run_evaluation([SystemEntry("base", "base", system)], held, tmp_path / "eval", progress=False)
    with pytest.raises(ValueError, match="give --base"):
        run_evaluation(
            [SystemEntry("k", "adapted", system)],
            [],
            tmp_path / "eval",
            progress=False,
            stock=StockVoices("all", ["Hi."]),
        )
    from tts_adapt.evaluation.systems import EspeakSystem

    with pytest.raises(ValueError, match="not a voice-pack model"):
        run_evaluation(
            [SystemEntry("base", "base", EspeakSystem())],
            [],
            tmp_path / "eval",
            progress=False,
            stock=StockVoices("all", ["Hi."]),
        )
    assert not (tmp_path / "eval").exists()  # refused before anything was written


def test_evaluate_command_refuses_stock_voices_it_cannot_measure(tmp_path, capsys):
    from tts_adapt.cli import main

    out = str(tmp_path / "eval")
    assert main(["evaluate", "--out", out]) == 1
    assert "--stock-voices" in capsys.readouterr().err
    assert main(["evaluate", "--out", out, "--stock-voices", "all", "--base", "espeak:en-us"]) == 1
    assert "not a voice-pack model" in capsys.readouterr().err
    argv = ["evaluate", "--out", out, "--stock-voices", "all", "--base", "espeak:en-us", "--stock-sentences"]
    assert main([*argv, "0"]) == 1 and "at least 1" in capsys.readouterr().err
    assert main([*argv, "17"]) == 1 and "only 16 sentences" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but a comment\n")
    assert main([*argv, "2", "--stock-texts", str(empty)]) == 1
    assert "no sentences" in capsys.readouterr().err
