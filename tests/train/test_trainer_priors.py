"""The trainer with curvature priors (KFAC, diagonal, EKFAC) estimated on the training objective: short
LoRA runs still learn, and a strong prior keeps the LoRA shift smaller than no prior does."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.adapters import dense_delta, lora_layers
from tts_adapt.curvature import estimate
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.data import TTSDataset, collate
from tts_adapt.train.trainer import Trainer

from .conftest import quick_config
from .test_trainer import reconstruction_loss

STEPS = 4


def _shift(model) -> float:
    return float(
        sum(d.square().sum() for layer in lora_layers(model).values() for d in dense_delta(layer).values())
    )


@pytest.fixture(scope="module")
def unregularised(micro_base, target_items, tmp_path_factory):
    """LoRA without a prior (strength 0): the shift a prior must restrain."""
    from tts_adapt.models.styletts2 import load_official

    model = load_official(*micro_base)
    cfg = quick_config(method="lora+prior", curvature="l2sp", strength=0.0, steps=STEPS)
    Trainer(model, cfg, target_items, tmp_path_factory.mktemp("free"), progress=False).run(resume=False)
    return _shift(model)


@pytest.mark.parametrize(
    "method",
    ["kfac", pytest.param("diag", marks=pytest.mark.slow), pytest.param("ekfac", marks=pytest.mark.slow)],
)
def test_curvature_prior_learns_and_restrains(method, fresh_model, target_items, unregularised, tmp_path):
    base = fresh_model().eval()
    batch = collate([TTSDataset(target_items, seed=0)[i] for i in range(len(target_items))])
    curv = estimate(base, [batch], get_objective("styletts2", max_len=80), method, progress=False)
    path = tmp_path / f"{method}.safetensors"
    curv.save(path)
    # strengths relative to the random model's curvature scale: negligible, and dominant
    key = {"kfac": "G", "diag": "diag", "ekfac": "scale"}[method]
    scale = float(torch.stack([t[key].abs().mean() for t in curv.layers.values()]).mean())
    if method == "kfac":
        scale *= float(torch.stack([t["A"].diagonal().mean() for t in curv.layers.values()]).mean())
    runs = {}
    for label, strength in (("weak", 1.0 / scale), ("strong", 1e4 / scale)):
        model = fresh_model()
        before = reconstruction_loss(model, target_items)
        cfg = quick_config(method="lora+prior", curvature=str(path), strength=strength, steps=STEPS)
        summary = Trainer(model, cfg, target_items, tmp_path / label, progress=False).run(resume=False)
        assert summary["steps"] == STEPS and summary["skipped_steps"] == 0
        runs[label] = (before, reconstruction_loss(model, target_items), _shift(model))
    before, after, _ = runs["weak"]
    assert after < before, f"{method}: {before:.4f} -> {after:.4f}"  # a weak prior still learns
    shift = runs["strong"][2]
    assert 0 < shift < 0.5 * unregularised, (method, shift, unregularised)  # a strong one restrains
