"""``tts-adapt adapt`` end to end, and the adapted-model folder it leaves behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from tts_adapt.cli import main
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.train import load_adapted_model, read_manifest
from tts_adapt.utils.io import load_tensors


@pytest.fixture(scope="module")
def adapted(micro_base, synthetic_corpus, tmp_path_factory):
    ckpt, _ = micro_base
    out = tmp_path_factory.mktemp("adapt") / "run"
    speaker = sorted(p.name for p in (synthetic_corpus / "train-synth").iterdir())[0]
    argv = [
        "adapt",
        "--checkpoint",
        str(ckpt),
        "--config",
        str(MICRO_CONFIG),
        "--data",
        str(synthetic_corpus),
        "--speakers",
        speaker,
        "--out",
        str(out),
        "--method",
        "lora+prior",
        "--curvature",
        "l2sp",
        "--lambda",
        "100",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--diff-start",
        "0",
        "--max-len",
        "80",
        "--save-every",
        "1",
        "--sample-every",
        "2",
        "--lr",
        "1e-3",
        "--device",
        "cpu",
        "--no-slm",
    ]
    assert main(argv) == 0
    _ARGV[:] = argv
    return out, ckpt, speaker


_ARGV: list[str] = []


def adapted_argv() -> list[str]:
    return list(_ARGV)


def test_folder_contents(adapted):
    out, ckpt, speaker = adapted
    manifest = read_manifest(out)
    assert manifest["completed"] and manifest["method"] == "lora+prior"
    assert manifest["summary"]["steps"] == 2
    assert manifest["data"]["speakers"] == [speaker]
    assert manifest["prior"] == {"curvature": "l2sp", "strength": 100.0}
    assert manifest["parameters"]["lora"] > 0 and manifest["base"]["sha256"]
    config = yaml.safe_load((out / "config.yml").read_text())
    assert config["model_params"]["diffusion"]["dist"]["sigma_data"] == pytest.approx(
        manifest["summary"]["sigma_data"]
    )
    assert "plbert_model_params" in config  # self-contained
    tensors, _ = load_tensors(out / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in k for k in tensors)
    assert (out / "samples" / "step-0000002.wav").exists()
    assert (out / "train.log").read_text().count("step 2/2") >= 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
    # the synthetic corpus is clean: the data report exists and lists no skipped utterance
    report = (out / "data_report.jsonl").read_text()
    assert [json.loads(line) for line in report.splitlines() if line.strip()] == []


def test_rerun_is_a_no_op(adapted, capsys):
    """A finished folder is recognised before anything else: exit 0, a message, nothing rewritten."""
    out, ckpt, _ = adapted
    before = (out / "manifest.json").read_text()
    argv = [
        "adapt",
        "--checkpoint",
        str(ckpt),
        "--config",
        str(MICRO_CONFIG),
        "--data",
        str(out),
        "--out",
        str(out),
        "--method",
        "lora+prior",
        "--curvature",
        "l2sp",
        "--steps",
        "2",
    ]
    # the data argument is not even read: a finished folder is recognised first
    assert main(argv) == 0
    assert "already holds a finished adaptation" in capsys.readouterr().out
    assert (out / "manifest.json").read_text() == before


def test_merged_equals_unmerged(adapted, golden_a):
    """Merging the adapter into the weights changes nothing audible, and the adapter does change the
    output: the base model's waveform for the same input differs far more than merged vs unmerged."""
    from tts_adapt.models.styletts2 import load_official

    out, ckpt, _ = adapted
    merged = load_adapted_model(out, merge=True)
    unmerged = load_adapted_model(out, merge=False)
    ref = golden_a["ref_wav"].numpy()
    a, _ = merged.synthesize("", reference=ref, phonemes="hˈaɪ ðɛɹ", seed=1, deterministic=True)
    b, _ = unmerged.synthesize("", reference=ref, phonemes="hˈaɪ ðɛɹ", seed=1, deterministic=True)
    merge_error = float(np.abs(a - b).max())
    assert merge_error < 1e-4
    base_model = load_official(ckpt, MICRO_CONFIG)
    c, _ = base_model.synthesize("", reference=ref, phonemes="hˈaɪ ðɛɹ", seed=1, deterministic=True)
    n = min(len(a), len(c))
    assert len(a) != len(c) or float(np.abs(a[:n] - c[:n]).max()) > 100 * max(merge_error, 1e-7)
    base = load_adapted_model(out, merge=True)  # a second load gives the same model
    for (ka, va), (kb, vb) in zip(merged.state_dict().items(), base.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_missing_base_checkpoint_is_clear(adapted, tmp_path):
    out, _, _ = adapted
    with pytest.raises(FileNotFoundError, match="base checkpoint"):
        load_adapted_model(out, checkpoint=tmp_path / "gone.pth")


def test_synth_with_the_adapted_folder(adapted, golden_a, tmp_path):
    import soundfile as sf

    out, ckpt, _ = adapted
    ref = tmp_path / "ref.wav"
    sf.write(ref, golden_a["ref_wav"].numpy(), 24000)
    wav = tmp_path / "adapted.wav"
    argv = [
        "synth",
        "--checkpoint",
        str(ckpt),
        "--config",
        str(MICRO_CONFIG),
        "--adapter",
        str(out),
        "--phonemes",
        "hˈaɪ",
        "--reference",
        str(ref),
        "--out",
        str(wav),
    ]
    assert main(argv) == 0
    audio, sr = sf.read(wav)
    assert sr == 24000 and len(audio) > 600


def test_export_loads_back_as_the_adapted_model(adapted, tmp_path):
    """``export`` merges the adapter into an official checkpoint that loads strictly to the same weights."""
    from tts_adapt.models.styletts2 import load_official

    out, ckpt, _ = adapted
    exported = tmp_path / "exported" / "model.pth"
    assert main(["export", "--adapted", str(out), "--out", str(exported)]) == 0
    config = exported.with_name("config.yml")
    assert config.read_text() == (out / "config.yml").read_text()
    reloaded = load_official(exported, config)
    merged = load_adapted_model(out, merge=True, modules=None)
    base = load_official(ckpt, MICRO_CONFIG)
    got, want, orig = reloaded.state_dict(), merged.state_dict(), base.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    # and the adaptation is really in it: some weight moved away from the base
    assert any(not torch.equal(got[k], orig[k]) for k in orig)


def test_dry_run_names_the_alignment_source_and_the_adversarial_terms(micro_base, synthetic_corpus, capsys):
    """The shipped base model aligns with its recogniser and trains MPD/MSD only if its pre-training
    did (its config says which); the official layout (micro config) aligns with its text aligner and
    trains adversarially."""
    speaker = sorted(p.name for p in (synthetic_corpus / "train-synth").iterdir())[0]
    common = [
        "adapt",
        "--data",
        str(synthetic_corpus),
        "--speakers",
        speaker,
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--no-slm",
        "--method",
        "lora",
    ]
    assert main([*common, "--out", "unused", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "alignments: the recogniser the config names (recognizer.safetensors)" in text
    import yaml

    from tts_adapt.models.styletts2.default import default_model_paths

    shipped = yaml.safe_load(default_model_paths()[1].read_text())
    # MPD/MSD train in adaptation exactly when pre-training trained them (package-model's lambda_gen)
    if shipped["loss_params"]["lambda_gen"] > 0:
        assert "adversarial: MPD/MSD" in text
    else:
        assert "adversarial: off (lambda_gen 0" in text
    ckpt, _ = micro_base
    assert (
        main([*common, "--checkpoint", str(ckpt), "--config", str(MICRO_CONFIG), "--out", "x", "--dry-run"])
        == 0
    )
    text = capsys.readouterr().out
    assert "alignments: the text aligner's attention" in text and "adversarial: MPD/MSD" in text


def test_dry_run_prints_where_each_setting_came_from(micro_base, synthetic_corpus, tmp_path, capsys):
    """A checkpoint whose config.yml holds pre-training keys (batch 16, ft_lr 1e-5, as the official
    LibriTTS one): the run takes the shipped fine-tuning config's values (official config_ft.yml), a flag
    wins where given, and the checkpoint's differing keys are listed as not used."""
    ckpt, _ = micro_base
    config = yaml.safe_load(MICRO_CONFIG.read_text())
    config.update(batch_size=16, max_len=300, optimizer_params={"lr": 1e-4, "bert_lr": 1e-5, "ft_lr": 1e-5})
    config["loss_params"].update(diff_epoch=10, joint_epoch=15)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    speaker = sorted(p.name for p in (synthetic_corpus / "train-synth").iterdir())[0]
    argv = ["adapt", "--checkpoint", str(ckpt), "--config", str(path), "--data", str(synthetic_corpus)]
    argv += [
        "--speakers",
        speaker,
        "--batch-size",
        "2",
        "--no-slm",
        "--method",
        "lora",
        "--out",
        "x",
        "--dry-run",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert "finetune_config.yml" in text.splitlines()[0] or "settings (shipped fine-tuning config" in text
    assert "(flag)" in lines["batch_size"] and " 2 " in lines["batch_size"]
    assert (
        "0.0001" in lines["ft_lr"]
        and "(shipped fine-tuning config: optimizer_params.ft_lr)" in lines["ft_lr"]
    )
    assert "(shipped fine-tuning config: max_len)" in lines["max_len"] and " 400 " in lines["max_len"]
    assert "shipped fine-tuning config: epochs x" in lines["steps"]
    assert "(shipped fine-tuning config: loss_params.joint_epoch x" in lines["joint_start"]
    assert "(default)" in lines["ood_texts"] and "(flag)" in lines["method"]
    assert "(default)" in lines["seed"]  # no flag given
    assert not {"curvature", "strength", "curvature_scaling"} & set(lines)  # plain LoRA has no prior
    assert "mel=5 gen=1" in lines["loss"] and "(checkpoint config.yml: loss_params.lambda_*)" in lines["loss"]
    assert "not used, from the checkpoint's config.yml" in text
    for unused in (
        "batch_size 16",
        "max_len 300",
        "optimizer_params.ft_lr 1e-05",
        "loss_params.joint_epoch 15",
    ):
        assert unused in text
