"""Curvature files (round trip, wrong model/targets) and resuming an interrupted estimation."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.curvature import Curvature, estimate
from tts_adapt.utils.io import load_tensors

from ..adapters.toys import make_toy

TARGETS = ["inp", "conv", "block", "head"]
TYPES = ("linear", "conv1d")


def toy_batches(n_batches: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(3, 8, 5, generator=g, dtype=torch.float64),
            torch.randn(3, 8, 3, generator=g, dtype=torch.float64),
        )
        for _ in range(n_batches)
    ]


def noisy_loss(model, batch):
    """Per-utterance loss with randomness (dropout on the input): exercises the per-batch reseeding."""
    x, y = batch
    x = torch.nn.functional.dropout(x, 0.2, training=True)
    return ((model(x) - y) ** 2).sum(dim=(1, 2))


class Boom(RuntimeError):
    pass


def crashing(after: int, inner=noisy_loss):
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] > after:
            raise Boom("injected crash")
        return inner(model, batch)

    return loss


def same(a: Curvature, b: Curvature, exact: bool = True) -> None:
    assert a.targets == b.targets and a.num_utterances == b.num_utterances
    for name in a.layers:
        for key in a.layers[name]:
            tol = dict(atol=0, rtol=0) if exact else dict(atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(a.layers[name][key], b.layers[name][key], **tol)


@pytest.mark.parametrize("method", ["l2sp", "diag", "kfac", "ekfac"])
def test_save_load_roundtrip(tmp_path, method):
    model = make_toy(dtype=torch.float64)
    curv = estimate(
        model,
        toy_batches(2),
        noisy_loss,
        method,
        TARGETS,
        layer_types=TYPES,
        progress=False,
        data_description={"corpus": "toy", "n": 6},
    )
    path = curv.save(tmp_path / "c.safetensors")
    back = Curvature.load(path, model=model)
    same(curv, back)
    assert back.method == method and back.info == curv.info and back.data == {"corpus": "toy", "n": 6}
    assert back.fingerprint == curv.fingerprint
    tensors, meta = load_tensors(path)
    assert meta["method"] == method and meta["targets"] == curv.targets
    if method == "kfac":
        assert set(tensors) == {f"{n}/{k}" for n in TARGETS_CANON for k in ("A", "G")}


TARGETS_CANON = ["block.fc", "conv", "head", "inp"]


def test_load_onto_other_model_or_targets_is_an_error(tmp_path):
    model = make_toy(dtype=torch.float64)
    curv = estimate(model, toy_batches(1), noisy_loss, "kfac", TARGETS, layer_types=TYPES, progress=False)
    path = curv.save(tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="another model"):
        Curvature.load(path, model=make_toy(d=8, dtype=torch.float64))
    with pytest.raises(ValueError, match="targets differ"):
        Curvature.load(path, model=model, targets=["inp"])
    other_weights = make_toy(seed=5, dtype=torch.float64)
    with pytest.raises(ValueError, match="different weights"):
        Curvature.load(path, model=other_weights)
    Curvature.load(path, model=other_weights, check_weights=False)
    with pytest.raises(FileNotFoundError):
        Curvature.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("method,crash_after", [("kfac", 3), ("diag", 2), ("ekfac", 2), ("ekfac", 7)])
def test_resume_after_crash_equals_uninterrupted(tmp_path, method, crash_after):
    batches = toy_batches(5)
    ref = estimate(
        make_toy(dtype=torch.float64), batches, noisy_loss, method, TARGETS, layer_types=TYPES, progress=False
    )
    state = tmp_path / "partial.safetensors"
    model = make_toy(dtype=torch.float64)
    with pytest.raises(Boom):
        estimate(
            model,
            batches,
            crashing(crash_after),
            method,
            TARGETS,
            layer_types=TYPES,
            progress=False,
            state_path=state,
            checkpoint_every=1,
        )
    assert state.exists()
    resumed = estimate(
        model,
        batches,
        noisy_loss,
        method,
        TARGETS,
        layer_types=TYPES,
        progress=False,
        state_path=state,
        checkpoint_every=1,
    )
    same(ref, resumed)
    assert not state.exists()  # removed once the estimate is complete


def test_resume_with_other_settings_is_refused(tmp_path):
    batches = toy_batches(3)
    state = tmp_path / "partial.safetensors"
    model = make_toy(dtype=torch.float64)
    with pytest.raises(Boom):
        estimate(
            model,
            batches,
            crashing(1),
            "kfac",
            TARGETS,
            layer_types=TYPES,
            progress=False,
            state_path=state,
            checkpoint_every=1,
        )
    with pytest.raises(ValueError, match="different method"):
        estimate(
            model, batches, noisy_loss, "diag", TARGETS, layer_types=TYPES, progress=False, state_path=state
        )
    with pytest.raises(ValueError, match="different seed"):
        estimate(
            model,
            batches,
            noisy_loss,
            "kfac",
            TARGETS,
            layer_types=TYPES,
            progress=False,
            state_path=state,
            seed=1,
        )
