"""The forgetting recipe's quick variant end to end (every stage, tiny data, random micro model)."""

from __future__ import annotations

import json

import pytest

from tts_adapt.cli import main

METHODS = {"full", "linear", "lora", "lora+l2sp", "lora+diag", "lora+kfac", "lora+ekfac"}


@pytest.mark.slow
def test_forgetting_quick_variant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "run", "forgetting", "--quick", "--out", "exp/fq"]) == 0
    out = tmp_path / "exp" / "fq"
    summary = json.loads((out / "summary" / "summary.json").read_text())
    rows = summary["rows"]
    assert len(rows) == 11 and {r["method"] for r in rows} == METHODS
    for r in rows:
        for key in ("target_sim", "target_per", "target_mcd", "heldout_sim", "heldout_per", "retention_sim"):
            assert r[key] is not None, (r["run"], key)
        assert r["retention_sim_ci"][0] <= r["retention_sim"] <= r["retention_sim_ci"][1]
        assert set(r["predicted"]) == {"l2sp", "diag", "kfac", "ekfac"}
        assert r["loss_increase"] == pytest.approx(r["loss_adapted"] - r["loss_base"])
    assert {r["curvature_size"] for r in rows if r["method"] == "lora+kfac"} == {6}
    assert isinstance(summary["goal"]["met"], bool) and set(summary["rank_correlation"]) == {
        "l2sp",
        "diag",
        "kfac",
        "ekfac",
    }
    page = (out / "results.md").read_text()
    assert "--quick" in page and "## Goal" in page and "Estimate, not a measurement" in page
    assert (out / "results_files" / "pareto_lambda.png").stat().st_size > 1000
    assert "id='pareto_lambda'" in (out / "report.html").read_text()

    # reruns: nothing left to do; the held-out loss of a run comes out the same
    stamps = {p.name: p.stat().st_mtime for p in (out / "stages").iterdir()}
    assert main(["recipe", "run", "forgetting", "--quick", "--out", "exp/fq"]) == 0
    assert stamps == {p.name: p.stat().st_mtime for p in (out / "stages").iterdir()}
    first = json.loads((out / "loss" / "lora+kfac-n6-l1000-s0.json").read_text())
    argv = next(
        a
        for a in json.loads(
            (out / "stages" / "11-prior.prior-kfac.n-6.lambda-1000.seed-0.done.json").read_text()
        )["argv"]
        if a[0] == "forgetting-loss"
    )
    argv[argv.index("--out") + 1] = str(tmp_path / "again.json")
    assert main(argv) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["loss"] == first["loss"] and again["predicted"] == first["predicted"]
