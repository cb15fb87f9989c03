"""``forgetting-summary`` on a hand-made evaluation folder and loss files: table, figures, page, goal."""

from __future__ import annotations

import json

import pytest

from tts_adapt.cli import main


def _est(m):
    return {"mean": m, "low": m - 0.01, "high": m + 0.01, "n": 4}


def _system(role, target, heldout, info=None):
    sets = {
        "target": {"sim": _est(target), "per": _est(0.5)},
        "heldout": {"sim": _est(heldout), "per": _est(0.6)},
    }
    s = {"role": role, "info": info or {}, "sets": sets}
    if role == "adapted":
        s["retention_speaker"] = {"sim": {"mean": heldout / 0.8, "low": 0.5, "high": 1.5, "n": 3}}
    return s


RUNS = {  # run: (method, size, lambda, seed, target sim, held-out sim, loss increase, kfac prediction)
    "lora-s0": ("lora", None, None, 0, 0.90, 0.60, 0.50, 9.0),
    "lora+kfac-n6-l1-s0": ("lora+kfac", 6, 1.0, 0, 0.89, 0.70, 0.30, 5.0),
    "lora+kfac-n6-l10-s0": ("lora+kfac", 6, 10.0, 0, 0.86, 0.77, 0.10, 1.0),
    "lora+kfac-n6-l10-s1": ("lora+kfac", 6, 10.0, 1, 0.88, 0.77, 0.12, 2.0),
    "lora+diag-n6-l1-s0": ("lora+diag", 6, 1.0, 0, 0.80, 0.70, 0.40, 6.0),
    "lora+l2sp-l1-s0": ("lora+l2sp", None, 1.0, 0, 0.85, 0.66, 0.45, 7.0),
}


@pytest.fixture
def experiment(tmp_path):
    ev, losses, stages = tmp_path / "eval", tmp_path / "loss", tmp_path / "stages"
    for d in (ev, losses, stages):
        d.mkdir()
    systems = {"ground_truth": _system("ground_truth", 0.95, 0.95), "base": _system("base", 0.3, 0.80)}
    spec = {"data": "x", "seed": 0}
    base_loss = {"mean": 2.0, "n": 3, "per_utterance": {}}
    (losses / "base.json").write_text(json.dumps({"run": "base", "spec": spec, "base_loss": base_loss}))
    for run, (method, size, lam, seed, t, h, inc, kf) in RUNS.items():
        systems[run] = _system("adapted", t, h)
        info = {"method": method, "curvature_size": size, "lambda": lam, "seed": seed, "wall_seconds": 2.0}
        loss = {"mean": 2.0 + inc, "n": 3, "per_utterance": {}}
        d = {"run": run, "spec": spec, "base_loss": base_loss, "loss": loss, "increase": inc, "info": info,
             "predicted": {"kfac": kf, "l2sp": 1.0}}  # fmt: skip
        (losses / f"{run}.json").write_text(json.dumps(d))
    (ev / "aggregates.json").write_text(
        json.dumps({"systems": systems, "test_set": {"speakers": {"heldout": ["a", "b", "c"]}}})
    )
    for tag, sec in [
        ("01-corpus", 10),
        ("06-curvature.method-kfac.n-6", 4),
        ("11-prior.prior-kfac.n-6.lambda-1.seed-0", 9),
    ]:
        (stages / f"{tag}.done.json").write_text(json.dumps({"argv": [], "seconds": sec}))
    return tmp_path


def test_summary_table_figures_goal_and_page(experiment, capsys):
    out, page = experiment / "summary", experiment / "docs" / "results.md"
    argv = ["forgetting-summary", "--eval", str(experiment / "eval"), "--losses", str(experiment / "loss"),
            "--out", str(out), "--stages", str(experiment / "stages"), "--results", str(page),
            "--command", "tts-adapt recipe run forgetting --quick --out exp/fq"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert len(s["rows"]) == 6 and s["main_size"] == 6
    kfac10 = next(p for p in s["points"] if p["method"] == "lora+kfac" and p["lambda"] == 10.0)
    assert kfac10["seeds"] == [0, 1] and kfac10["target_sim"] == pytest.approx(0.87)
    # by hand: LoRA target 0.90 -> need 0.855; KFAC λ=10 has 0.87 and retention 0.77/0.80 = 0.9625
    goal = s["goal"]
    assert goal["parts"]["retention_at_lora_target"]["lambdas_meeting"] == [10.0]
    assert goal["parts"]["kfac_dominates_diag"]["met"] and goal["parts"]["kfac_dominates_l2sp"]["met"]
    assert goal["met"] is True
    # kfac prediction vs increase over the 6 runs: ranks agree exactly
    assert s["rank_correlation"]["kfac"]["spearman"] == pytest.approx(1.0)
    text = page.read_text()
    assert "**met**" in text and "quick" in text and "Estimate, not a measurement" in text
    for png in ("pareto_lambda", "lambda_curves", "prediction"):
        assert (page.parent / "results_files" / f"{png}.png").stat().st_size > 1000
        assert f"results_files/{png}.png" in text
    assert (out / "summary.csv").read_text().count("\n") == 7


def test_summary_names_missing_inputs(experiment, capsys):
    argv = ["forgetting-summary", "--eval", str(experiment / "nowhere"), "--losses", str(experiment / "loss"),
            "--out", str(experiment / "s")]  # fmt: skip
    assert main(argv) == 1
    assert "aggregates.json not found" in capsys.readouterr().err
