"""``tts-adapt curvature`` end to end: a micro checkpoint, a synthetic espeak-ng corpus, resume."""

from __future__ import annotations

import shutil

import pytest
import torch

from tts_adapt.cli import main
from tts_adapt.curvature import Curvature


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from tts_adapt.data.synthetic import make_corpus

    return make_corpus(tmp_path_factory.mktemp("synth") / "corpus", 2, 2, seed=0, progress=False)


def test_cli_kfac_on_a_corpus(micro_checkpoint, micro_model, corpus, tmp_path, capsys):
    ckpt, config = micro_checkpoint
    out = tmp_path / "curv.safetensors"
    argv = [
        "curvature",
        "--checkpoint",
        str(ckpt),
        "--config",
        str(config),
        "--data",
        str(corpus),
        "--method",
        "kfac",
        "--max-utterances",
        "3",
        "--crop-frames",
        "80",
        "--max-frames",
        "1200",
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    curv = Curvature.load(out, model=micro_model)  # checks the fingerprint against the same checkpoint
    assert curv.method == "kfac" and curv.num_utterances == 3
    assert curv.data["max_utterances"] == 3 and curv.data["objective"] == "styletts2"
    assert any(n.startswith("decoder.") for n in curv.targets)
    assert not (tmp_path / "curv.safetensors.partial").exists()
    assert torch.isfinite(curv.layers["bert_encoder"]["A"]).all()


def test_cli_l2sp_needs_no_data_and_errors_are_one_line(micro_checkpoint, tmp_path, capsys):
    ckpt, config = micro_checkpoint
    out = tmp_path / "l2sp.safetensors"
    assert (
        main(
            [
                "curvature",
                "--checkpoint",
                str(ckpt),
                "--config",
                str(config),
                "--method",
                "l2sp",
                "--out",
                str(out),
                "--targets",
                "decoder,bert_encoder",
            ]
        )
        == 0
    )
    curv = Curvature.load(out)
    assert curv.method == "l2sp" and "bert_encoder" in curv.targets
    assert all(n.split(".")[0] in ("decoder", "bert_encoder") for n in curv.targets)
    assert (
        main(
            [
                "curvature",
                "--checkpoint",
                str(ckpt),
                "--config",
                str(config),
                "--method",
                "kfac",
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert "--data is required" in capsys.readouterr().err
    assert (
        main(
            [
                "curvature",
                "--checkpoint",
                str(tmp_path / "nope.pth"),
                "--config",
                str(config),
                "--method",
                "l2sp",
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["kfac", "diag"])
def test_dry_run_prints_the_plan_and_writes_nothing(micro_checkpoint, corpus, tmp_path, capsys, method):
    """The size is checked against the stored curvature of the same layers: KFAC's A and G, or the
    diagonal, counted from the file the real run writes."""
    ckpt, config = micro_checkpoint
    base = ["curvature", "--checkpoint", str(ckpt), "--config", str(config), "--data", str(corpus),
            "--method", method, "--targets", "bert_encoder,predictor.duration_proj", "--max-utterances", "2",
            "--crop-frames", "80", "--no-progress", "--device", "cpu"]  # fmt: skip
    out = tmp_path / "dry.safetensors"
    assert main([*base, "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "dry run: every check passed" in text and "2 utterances" in text
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no curvature, no report, no partial state
    real = tmp_path / "real.safetensors"
    assert main([*base, "--out", str(real)]) == 0
    curv = Curvature.load(real)
    stored = sum(t.numel() for layer in curv.layers.values() for t in layer.values())
    assert f"result: about {stored * 4 / 1e6:.1f} MB" in text, text


def test_dry_run_fails_on_bad_targets(micro_checkpoint, tmp_path, capsys):
    ckpt, config = micro_checkpoint
    argv = ["curvature", "--checkpoint", str(ckpt), "--config", str(config), "--method", "l2sp",
            "--targets", "no_such_module", "--out", str(tmp_path / "x.safetensors"), "--dry-run"]  # fmt: skip
    assert main(argv) == 1
    assert "no_such_module" in capsys.readouterr().err
