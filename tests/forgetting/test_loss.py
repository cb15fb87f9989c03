"""Held-out pre-training loss (deterministic) and the prior's prediction against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tts_adapt.forgetting.loss import (
    HeldoutSpec,
    build_predictors,
    heldout_batches,
    heldout_losses,
    predictions,
)


def test_heldout_loss_is_deterministic_and_leaves_rngs_alone(micro_model, synthetic_corpus):
    spec = HeldoutSpec(str(synthetic_corpus), max_utterances=2, seed=1, crop_frames=80, max_frames=1200)
    batches = heldout_batches(spec)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = heldout_losses(micro_model, batches, spec)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = heldout_losses(micro_model, batches, spec)
    assert len(first) == 2 and first == second and all(np.isfinite(v) for v in first.values())
    other = heldout_losses(micro_model, batches, HeldoutSpec(**{**spec.key(), "seed": 2}))
    assert other != first  # the seed drives crops and noise


def _fresh_copy(model: torch.nn.Module) -> torch.nn.Module:
    """An independent copy (``copy.deepcopy`` refuses weight-normalised modules)."""
    from tts_adapt.models.styletts2.model import StyleTTS2

    out = StyleTTS2(model.config)
    out.load_state_dict(model.state_dict())
    return out.eval()


def _kfac_file(model, path, seed: int = 0):
    """A KFAC curvature with random SPD factors for the l2sp targets (shape info from the estimator)."""
    from tts_adapt.curvature import Curvature, estimate
    from tts_adapt.curvature.store import fingerprint

    info = estimate(model, [], None, "l2sp", progress=False).info
    g = torch.Generator().manual_seed(seed)
    layers = {}
    for name, d in info.items():
        k = d["d_in"] + int(d["bias"])
        a = torch.randn(k, k, generator=g, dtype=torch.float64)
        b = torch.randn(d["d_out"], d["d_out"], generator=g, dtype=torch.float64)
        layers[name] = {"A": (a @ a.T / k).float(), "G": (b @ b.T / d["d_out"]).float()}
    curv = Curvature("kfac", layers, info, num_utterances=7, fingerprint=fingerprint(model, list(info)))
    curv.save(path)
    return curv


def test_predictions_match_a_hand_computation(micro_model, tmp_path):
    """½·Σ vec(ΔW)ᵀ H vec(ΔW) with ΔW = [ΔW | Δb] per layer: identity (l2sp) and tr(G ΔW A ΔWᵀ) (kfac)."""
    from tts_adapt.adapters.targets import named_layers

    model = _fresh_copy(micro_model)
    curv = _kfac_file(model, tmp_path / "kfac.safetensors")
    priors = build_predictors(model, {"l2sp": "l2sp", "kfac": str(tmp_path / "kfac.safetensors")})
    assert predictions(priors) == {"l2sp": 0.0, "kfac": 0.0}  # nothing changed yet
    layers = named_layers(model)
    g = torch.Generator().manual_seed(1)
    l2, kf = 0.0, 0.0
    with torch.no_grad():
        for name in curv.targets:
            layer = layers[name]
            dw = 0.01 * torch.randn(layer.weight.shape, generator=g)
            layer.weight += dw
            cols = [dw.double().reshape(dw.shape[0], -1).numpy()]
            if layer.bias is not None:
                db = 0.01 * torch.randn(layer.bias.shape, generator=g)
                layer.bias += db
                cols.append(db.double().numpy()[:, None])
            d = np.concatenate(cols, axis=1)
            l2 += 0.5 * float((d**2).sum())
            a, gg = curv.layers[name]["A"].double().numpy(), curv.layers[name]["G"].double().numpy()
            kf += 0.5 * float(np.trace(gg @ d @ a @ d.T))
    got = predictions(priors)
    assert got["l2sp"] == pytest.approx(l2, rel=1e-4) and got["kfac"] == pytest.approx(kf, rel=1e-4)


def test_a_curvature_of_other_weights_is_refused(micro_model, tmp_path):
    model = _fresh_copy(micro_model)
    _kfac_file(model, tmp_path / "kfac.safetensors")
    with torch.no_grad():
        next(iter(model.bert_encoder.parameters())).add_(1.0)
    with pytest.raises(ValueError, match="different weights"):
        build_predictors(model, {"kfac": str(tmp_path / "kfac.safetensors")})
    with pytest.raises(FileNotFoundError, match="curvature file"):
        build_predictors(model, {"kfac": str(tmp_path / "none.safetensors")})
