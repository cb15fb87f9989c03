"""The Kokoro forgetting recipe's quick variant end to end: real Kokoro, real Piper joe, Whisper,
Distill-MOS; every kind of stage once on tiny data with 2 adaptation steps (about 20 minutes on 2 cores,
so behind its own marker: ``python -m pytest -m experiment``)."""

from __future__ import annotations

import json
import shutil

import pytest

from tts_adapt.cli import main

METHODS = {"voice", "full", "lora", "lora+l2sp", "lora+diag", "lora+kfac", "lora+ekfac"}


@pytest.mark.experiment
def test_forgetting_kokoro_quick_variant(kokoro_paths, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "OMP_NUM_THREADS", "1"
    )  # the published run's setting (stock clips compare bit for bit)
    argv = ["recipe", "run", "forgetting_kokoro", "--quick", "--out", "exp/fkq"]
    assert main(argv) == 0
    out = tmp_path / "exp" / "fkq"
    summary = json.loads((out / "summary" / "summary.json").read_text())
    assert summary["progress"]["adapt_done"] == summary["progress"]["adapt_planned"] == 8
    for target in ("joe",):
        t = summary["targets"][target]
        rows = {r["run"]: r for r in t["rows"]}
        assert len(rows) == 8 and {r["method"] for r in rows.values()} == METHODS
        for r in rows.values():
            for key in ("target_sim", "target_wer", "target_mos", "stock_retention", "stock_wer_rise"):
                assert r[key] is not None, (target, r["run"], key)
            assert r["stock_voices"] == 3 and set(r["per_voice_retention"]) == {
                "af_heart",
                "bf_emma",
                "am_adam",
            }
            assert set(r["predicted"]) == {"l2sp", "diag", "kfac", "ekfac"}
        # the voice pack alone moves no weight: every stock clip is the base's, bit for bit
        voice = rows["voice-s0"]
        assert voice["stock_retention"] == 1.0 and voice["loss_increase"] == 0.0
        assert all(v == 0.0 for v in voice["predicted"].values())
        assert {r["curvature_size"] for r in rows.values() if r["method"] == "lora+kfac"} == {2, 4}
        assert isinstance(t["goal"]["met"], bool)
    page = (out / "results.md").read_text()
    assert "## joe" in page and "### Listen" in page and "--quick" in page
    assert (out / "results_files" / "joe-pareto.png").stat().st_size > 1000
    assert any((out / "results_files" / "listen" / "joe").glob("*.ogg"))

    # one point deleted and run again reproduces its adapter and its scores
    point = "lora+kfac-l1e4-s0"
    adapter = out / "joe" / "adapt" / point / "adapter" / "adapter_model.safetensors"
    before = adapter.read_bytes()
    loss_before = json.loads((out / "joe" / "loss" / f"{point}.json").read_text())["loss"]
    shutil.rmtree(out / "joe" / "adapt" / point)
    (out / "joe" / "loss" / f"{point}.json").unlink()
    stamp = next((out / "stages").glob("*-prior.target-joe.prior-kfac.lambda-1e4.seed-0.done.json"))
    stamp.unlink()
    assert main([*argv, "--only", "prior.target-joe.prior-kfac.lambda-1e4.seed-0"]) == 0
    assert adapter.read_bytes() == before
    assert json.loads((out / "joe" / "loss" / f"{point}.json").read_text())["loss"] == loss_before
