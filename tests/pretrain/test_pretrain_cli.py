"""``tts-adapt pretrain`` end to end on a tiny corpus: stages, resume, and a result every command loads."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tts_adapt.cli import main
from tts_adapt.models.styletts2 import load_official
from tts_adapt.utils.io import load_tensors

ARGS = [
    "--config",
    "micro",
    "--aligner-steps",
    "2",
    "--first-steps",
    "3",
    "--second-steps",
    "2",
    "--tma-start",
    "1",
    "--batch-size",
    "2",
    "--max-len",
    "40",
    "--log-every",
    "1",
    "--save-every",
    "1",
    "--sample-every",
    "100",
    "--threads",
    "1",
    "--jobs",
    "1",
]


def run(corpus: Path, out: Path, *extra: str) -> int:
    return main(["pretrain", "--data", str(corpus), "--out", str(out), *ARGS, *extra])


def test_dry_run_prints_the_plan_and_writes_nothing(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--dry-run") == 0
    text = capsys.readouterr().out
    assert "aligner 2 steps, first 3 steps, second 2 steps" in text
    assert not (out / "stages").exists()


def test_bad_stage_name_is_a_clear_error(synthetic_corpus, tmp_path, capsys):
    assert run(synthetic_corpus, tmp_path / "r", "--stages", "aligner,third") == 1
    assert "unknown stage(s) third" in capsys.readouterr().err


def test_pretrain_resumes_exactly_and_the_result_loads(synthetic_corpus, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(synthetic_corpus, straight) == 0
    # the same run interrupted after the first stage's first step: delete what came after it
    assert run(synthetic_corpus, resumed, "--stages", "aligner,first") == 0
    first = resumed / "stages" / "first"
    (first / "done.json").unlink()
    for ckpt in sorted((first / "checkpoints").glob("step-*"))[1:]:
        import shutil

        shutil.rmtree(ckpt)
    with open(first / "losses.jsonl", "a") as f:
        f.write('{"step": 4, "me')  # a kill during an append leaves a torn line
    assert run(synthetic_corpus, resumed) == 0
    a, _ = load_tensors(straight / "model.safetensors")
    b, _ = load_tensors(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"resumed run differs in {changed[:5]}"

    # the interrupted run had logged steps 2 and 3 before they were undone: the log holds each step
    # once, with the values of the straight run
    def losses(run_dir: Path) -> list[dict]:
        lines = (run_dir / "stages" / "first" / "losses.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "utt_per_s"} for x in lines]

    assert [r["step"] for r in losses(resumed)] == [1, 2, 3]
    assert losses(resumed) == losses(straight)
    model = load_official(straight / "model.pth", straight / "config.yml")  # strict: every key
    summary = json.loads((straight / "summary.json").read_text())
    assert set(summary["stages"]) == {"aligner", "first", "second"}
    # the trained weights really moved away from initialisation in each stage's modules
    init = load_official(straight / "model.pth", straight / "config.yml")
    torch.manual_seed(0)
    from tts_adapt.models.styletts2 import build_model

    fresh = build_model(straight / "config.yml")
    for name in ("text_aligner", "decoder", "predictor"):
        w = dict(getattr(model, name).named_parameters())
        f = dict(getattr(fresh, name).named_parameters())
        assert any(not torch.equal(w[k], f[k]) for k in w), f"{name} did not train"
    del init
    # packaged: float16, no JDC/WavLM discriminator, loads strictly with the declared untrained modules
    from tts_adapt.pretrain.package import package_run

    packaged = package_run(straight, tmp_path / "pkg")
    small = load_official(packaged, tmp_path / "pkg" / "config.yml")
    w = dict(small.decoder.named_parameters())
    for k, v in model.decoder.named_parameters():
        assert torch.allclose(w[k], v, atol=2e-3 * max(1.0, float(v.abs().max())))


def test_changed_settings_refuse_to_resume(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--stages", "aligner") == 0
    ckpts = out / "stages" / "aligner"
    (ckpts / "done.json").unlink()
    assert (
        main(["pretrain", "--data", str(synthetic_corpus), "--out", str(out), *ARGS, "--aligner-lr", "0.1"])
        == 1
    )
    assert "other aligner-stage settings" in capsys.readouterr().err
