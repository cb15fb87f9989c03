"""Alignments from a trained CTC phoneme recogniser (``pretrain --alignment recognizer``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import yaml

from tts_adapt.alignment.paths import align_batch, recognizer_scores
from tts_adapt.alignment.recognizer import KIND, build_aligner
from tts_adapt.alignment.table import AlignmentTable
from tts_adapt.cli import main
from tts_adapt.data import TTSDataset, collate
from tts_adapt.models.styletts2.alignment import monotonic_alignment
from tts_adapt.text.symbols import SYMBOL_TO_ID, SYMBOLS
from tts_adapt.utils.io import load_tensors, save_tensors

from .test_pretrain_cli import ARGS

PAD, A, B = 0, SYMBOL_TO_ID["a"], SYMBOL_TO_ID["b"]
STRESS, SPACE = SYMBOL_TO_ID["ˈ"], SYMBOL_TO_ID[" "]


def ctc_logits(frames: list[dict[int, float]]) -> torch.Tensor:
    """``[1, frames, V]`` logits whose softmax is exactly the given per-frame probabilities."""
    probs = torch.full((len(frames), len(SYMBOLS)), 1e-6)
    for t, p in enumerate(frames):
        for k, v in p.items():
            probs[t, k] = v
    probs = probs / probs.sum(-1, keepdim=True)
    return probs.log().unsqueeze(0)


def test_scores_are_the_non_blank_posterior_for_phones_and_blank_for_silences():
    frame = {0: 0.8, A: 0.15, B: 0.05}
    scores = recognizer_scores(ctc_logits([frame]), torch.tensor([[PAD, STRESS, A, SPACE, B]]))[0, :, 0]
    p_blank = 0.8 / (1 + (len(SYMBOLS) - 3) * 1e-6)
    assert math.isclose(float(scores[0]), math.log(p_blank), rel_tol=1e-4)  # pad: log p(blank)
    assert float(scores[1]) == -30.0  # stress mark: one frame, whatever the audio
    assert math.isclose(float(scores[2]), math.log(0.15 / 0.2), abs_tol=3e-3)  # a among non-blank
    assert math.isclose(float(scores[3]), math.log(p_blank) - 1.0, rel_tol=1e-4)  # space: penalised
    assert math.isclose(float(scores[4]), math.log(0.05 / 0.2), abs_tol=3e-3)


def test_path_follows_the_recogniser():
    """Silence, then 'a' heard for 4 frames (spiking once), then 'b' for 3, then silence: the pads take
    the silences, the stress mark one frame from its vowel, and each phone the frames where it leads
    the non-blank symbols, which a spike-only (raw posterior) score would not give."""
    sil = {0: 0.98}
    a = [{0: 0.7, A: 0.25, B: 0.02}, {A: 0.9}, {0: 0.7, A: 0.2}, {0: 0.8, A: 0.15}]
    b = [{0: 0.6, B: 0.3}, {B: 0.95}, {0: 0.75, B: 0.2}]
    logits = ctc_logits([sil, sil, *a, *b, sil, sil])
    tokens = torch.tensor([[PAD, STRESS, A, B, PAD]])
    hard = monotonic_alignment(recognizer_scores(logits, tokens), torch.tensor([5]), torch.tensor([11]))
    assert hard[0].sum(-1).tolist() == [2, 1, 3, 3, 2]
    assert hard[0].argmax(0).tolist() == [0, 0, 1, 2, 2, 2, 3, 3, 3, 4, 4]


def _recognizer_file(path, seed: int, n_token: int = len(SYMBOLS)):
    torch.manual_seed(seed)
    config = {"input_dim": 80, "hidden_dim": 16, "n_layers": 1, "token_embedding_dim": 16, "n_token": n_token}
    save_tensors(path, build_aligner(config).state_dict(), {"kind": KIND, "config": config})
    return path


def test_table_from_a_recogniser_is_a_monotonic_path_and_follows_its_weights(prepared_synthetic, tmp_path):
    from tts_adapt.alignment.recognizer import CTCRecognizer
    from tts_adapt.models.styletts2 import build_model
    from tts_adapt.models.styletts2.config import MICRO_CONFIG

    items = prepared_synthetic.items[:3]
    b = collate([TTSDataset(items, seed=0)[i] for i in range(3)])
    model = build_model(MICRO_CONFIG).eval()
    rec = CTCRecognizer.load(_recognizer_file(tmp_path / "r0.safetensors", 0)).model
    path = tmp_path / "table.safetensors"
    hard = AlignmentTable.build(model, items, path, "recognizer", progress=False, recognizer=rec)(b)
    direct = align_batch(model, b, "recognizer", rec)
    for i in range(3):
        n, f = int(b.token_lengths[i]), int(b.mel_lengths[i]) // 2
        assert hard[i, :n].sum(0)[:f].eq(1).all() and (hard[i, :n].sum(-1) >= 1).all()
        assert torch.equal(hard[i, :n, :f], direct[i, :n, :f])  # the table is the direct path
    first = load_tensors(path)[1]["settings"]
    assert first["source"] == "recognizer"
    other = CTCRecognizer.load(_recognizer_file(tmp_path / "r1.safetensors", 1)).model
    AlignmentTable.build(model, items, path, "recognizer", progress=False, recognizer=other)
    assert load_tensors(path)[1]["settings"]["aligner"] != first["aligner"]  # rebuilt for new weights


def test_pretrain_with_a_recogniser_runs_and_records_it(synthetic_corpus, tmp_path, capsys):
    rec = _recognizer_file(tmp_path / "rec.safetensors", 0)
    out = tmp_path / "run"
    base = ["pretrain", "--data", str(synthetic_corpus), "--out", str(out), *ARGS]
    assert main([*base, "--alignment", "recognizer"]) == 1
    assert "--alignment recognizer --recognizer FILE" in capsys.readouterr().err
    assert main([*base, "--alignment", "recognizer", "--recognizer", str(tmp_path / "missing.st")]) == 1
    assert "missing.st" in capsys.readouterr().err
    small = _recognizer_file(tmp_path / "small.safetensors", 0, n_token=50)
    assert main([*base, "--alignment", "recognizer", "--recognizer", str(small), "--tma-start", "3"]) == 1
    assert "50 output classes" in capsys.readouterr().err
    assert main([*base, "--alignment", "recognizer", "--recognizer", str(rec), "--tma-start", "3"]) == 0
    assert load_tensors(out / "alignments.safetensors")[1]["settings"]["source"] == "recognizer"
    assert (out / "model.pth").exists()
    # the package carries the recogniser its decoder learned on, and its config names it
    from tts_adapt.pretrain.package import package_run

    package_run(out, tmp_path / "pkg")
    shipped = yaml.safe_load((tmp_path / "pkg" / "config.yml").read_text())
    assert shipped["alignment_recognizer"] == "recognizer.safetensors"
    got, want = load_tensors(tmp_path / "pkg" / "recognizer.safetensors")[0], load_tensors(rec)[0]
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def _model_naming(tmp_path, recognizer: str):
    from tts_adapt.models.styletts2 import build_model

    cfg = yaml.safe_load(Path(__file__).parents[2].joinpath("tts_adapt/assets/micro_config.yml").read_text())
    cfg["alignment_recognizer"] = recognizer
    path = tmp_path / "model" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    return build_model(path).eval(), path


def test_fine_tuning_aligns_with_the_recogniser_the_config_names(prepared_synthetic, tmp_path):
    """A base pre-trained on a recogniser's paths (the shipped one) is fine-tuned on the same paths:
    the config's ``alignment_recognizer`` (relative to the config's folder) replaces the text aligner
    in the objective, with the paths ``align_batch`` gives, computed once per utterance."""
    from tts_adapt.alignment.paths import RecognizerPaths
    from tts_adapt.alignment.recognizer import CTCRecognizer
    from tts_adapt.objective import FineTuneObjective
    from tts_adapt.train.artifacts import resolved_config

    items = prepared_synthetic.items[:3]
    b = collate([TTSDataset(items, seed=0)[i] for i in range(3)])
    model, config_path = _model_naming(tmp_path, "rec.safetensors")
    _recognizer_file(config_path.parent / "rec.safetensors", 0)
    obj = FineTuneObjective(model, max_len=80, f0_source="yin", estimate_sigma_data=False)
    assert isinstance(obj.alignments, RecognizerPaths)
    rec = CTCRecognizer.load(config_path.parent / "rec.safetensors").model
    direct = align_batch(model, b, "recognizer", rec)
    calls = []
    obj.alignments.recognizer.register_forward_hook(lambda *a: calls.append(1))
    got = obj.alignments(b)
    assert torch.equal(got[:, :, : direct.shape[-1]], direct) and len(calls) == 3
    obj.alignments(b)
    assert len(calls) == 3  # cached: no second recogniser pass
    with torch.no_grad():
        p = obj.generator_pass(b, step=0)
    assert "s2s" not in p.terms and "mono" not in p.terms  # the text aligner is not used
    for i in range(3):  # duration targets are the recogniser's token durations
        n = int(b.token_lengths[i])
        assert torch.equal(direct[i, :n].sum(-1), got[i, :n].sum(-1))
    # an adapted model's config points at the same file from wherever it is written
    resolved = resolved_config(model.config, 0.3)
    assert Path(resolved["alignment_recognizer"]) == (config_path.parent / "rec.safetensors").resolve()


def test_a_missing_alignment_recognizer_is_a_clear_error(tmp_path):
    import pytest

    from tts_adapt.objective import FineTuneObjective

    model, _ = _model_naming(tmp_path, "gone.safetensors")
    with pytest.raises(FileNotFoundError, match="alignment_recognizer: gone.safetensors"):
        FineTuneObjective(model, f0_source="yin")


def test_curvature_objective_on_such_a_model_is_its_training_loss(prepared_synthetic, tmp_path):
    """The curvature's default objective is the trained loss without adversarial terms; for a model
    aligned by its recogniser that loss has no s2s/mono, and the curvature must not ask for them."""
    from tts_adapt.curvature.objectives import get_objective
    from tts_adapt.objective import FineTuneObjective

    items = prepared_synthetic.items[:2]
    b = collate([TTSDataset(items, seed=0)[i] for i in range(2)])
    model, config_path = _model_naming(tmp_path, "rec.safetensors")
    _recognizer_file(config_path.parent / "rec.safetensors", 0)
    sigma = model.diffusion.sigma_data
    with torch.no_grad():
        got = get_objective("styletts2", max_len=80, f0_source="yin")(model, b)
        assert model.diffusion.sigma_data == sigma
        obj = FineTuneObjective(model, max_len=80, f0_source="yin", seed=0)
        p = obj.generator_pass(b, 0)
        model.diffusion.sigma_data = sigma
    expected = sum(getattr(obj.weights, t) * v for t, v in p.terms.items() if t not in ("gen", "slm"))
    assert "s2s" not in p.terms and torch.allclose(got, expected)
