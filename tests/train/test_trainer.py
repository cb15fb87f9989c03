"""The adaptation trainer on the micro model and a synthetic speaker: each method learns, LoRA freezes
the base, the prior restrains the shift, a killed run resumes exactly, and bad batches are survived."""

from __future__ import annotations

import logging

import pytest
import torch

from tts_adapt.adapters import dense_delta, lora_layers
from tts_adapt.data import TTSDataset, collate
from tts_adapt.objective import FineTuneObjective
from tts_adapt.train.methods import GENERATOR_MODULES
from tts_adapt.train.state import trainable_state
from tts_adapt.train.trainer import NonFiniteLossError, Trainer

from .conftest import quick_config

RECONSTRUCTION = ("mel", "F0", "norm", "dur", "ce", "s2s", "mono")


def reconstruction_loss(model, items) -> float:
    """The non-adversarial terms on a fixed batch with fixed random choices (step 0), no updates."""
    model.eval()
    model.text_aligner.token_mask_prob = 0.0
    obj = FineTuneObjective(model, max_len=80, seed=0, estimate_sigma_data=False)
    ds = TTSDataset(items, seed=0)
    with torch.no_grad():
        p = obj.generator_pass(collate([ds[i] for i in range(len(ds))]), step=0)
    return float(sum(p.terms[t].mean() for t in RECONSTRUCTION))


@pytest.mark.parametrize(
    "method", ["full", pytest.param("linear", marks=pytest.mark.slow), "lora", "lora+prior"]
)
def test_each_method_lowers_the_loss(method, fresh_model, target_items, tmp_path):
    model = fresh_model()
    before = reconstruction_loss(model, target_items)
    prior = {"curvature": "l2sp", "strength": 1.0} if method.endswith("prior") else {}
    cfg = quick_config(method=method, steps=4, **prior)
    summary = Trainer(model, cfg, target_items, tmp_path, progress=False).run(resume=False)
    assert summary["steps"] == 4 and summary["skipped_steps"] == 0
    after = reconstruction_loss(model, target_items)
    assert after < before, f"{method}: {before:.4f} -> {after:.4f}"


def test_lora_leaves_the_base_bit_identical(fresh_model, target_items, tmp_path):
    model = fresh_model()
    # peft keeps the original parameter objects inside ``base_layer``, so identity tracks them
    base = {
        id(p): (name, p, p.detach().clone())
        for m in GENERATOR_MODULES
        for name, p in getattr(model, m).named_parameters()
    }
    Trainer(model, quick_config(method="lora", steps=2), target_items, tmp_path, progress=False).run(
        resume=False
    )
    for name, param, snapshot in base.values():
        assert not param.requires_grad, f"{name} is trainable under LoRA"
        assert torch.equal(param.detach(), snapshot), f"{name} changed under LoRA"
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(bool((p != 0).any()) for p in lora_b), "no LoRA B matrix moved off zero"


def _shift(model) -> float:
    return float(
        sum(d.square().sum() for layer in lora_layers(model).values() for d in dense_delta(layer).values())
    )


@pytest.mark.slow
def test_prior_restrains_the_shift(fresh_model, target_items, tmp_path):
    shifts = {}
    for strength in (0.0, 1e4):
        model = fresh_model()
        cfg = quick_config(method="lora+prior", curvature="l2sp", strength=strength, steps=4)
        Trainer(model, cfg, target_items, tmp_path / str(strength), progress=False).run(resume=False)
        shifts[strength] = _shift(model)
    assert shifts[0.0] > 0
    assert shifts[1e4] < 0.5 * shifts[0.0], shifts


@pytest.mark.slow
def test_resume_after_a_crash_reproduces_the_run(fresh_model, target_items, tmp_path, monkeypatch):
    """Dropout on: the restored RNG state matters as much as weights and optimiser moments."""
    cfg = quick_config(method="lora", steps=3, save_every=2, dropout=True)
    straight = fresh_model()
    Trainer(straight, cfg, target_items, tmp_path / "straight", progress=False).run(resume=False)

    crashed = Trainer(fresh_model(), cfg, target_items, tmp_path / "crash", progress=False)
    original = Trainer.train_step

    def dies_at_step_2(self, batches):
        if self.step == 2:
            raise KeyboardInterrupt("simulated kill")
        return original(self, batches)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        crashed.run()
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed_model = fresh_model()
    resumed = Trainer(resumed_model, cfg, target_items, tmp_path / "crash", progress=False)
    summary = resumed.run()
    assert summary["steps"] == 3 and (tmp_path / "crash" / "checkpoints" / "step-0000002").is_dir()
    a, b = trainable_state(straight), trainable_state(resumed_model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_other_settings(fresh_model, target_items, tmp_path):
    cfg = quick_config(method="lora", steps=1, save_every=1)
    Trainer(fresh_model(), cfg, target_items, tmp_path, progress=False).run(resume=False)
    other = quick_config(method="lora", steps=2, lora_rank=4)
    with pytest.raises(ValueError, match="other settings"):
        Trainer(fresh_model(), other, target_items, tmp_path, progress=False).run()


def test_nan_batches_are_skipped_then_abort(fresh_model, target_items, tmp_path, monkeypatch, caplog):
    model = fresh_model()
    original = FineTuneObjective.total
    calls = {"n": 0}

    def poisoned(self, p):
        calls["n"] += 1
        out = original(self, p)
        return out * float("nan") if calls["n"] == 1 else out

    monkeypatch.setattr(FineTuneObjective, "total", poisoned)
    with caplog.at_level(logging.WARNING):
        summary = Trainer(
            model, quick_config(method="lora", steps=2), target_items, tmp_path / "a", progress=False
        ).run(resume=False)
    assert summary["skipped_steps"] == 1 and "skipping update" in caplog.text
    assert target_items[0].id in caplog.text

    monkeypatch.setattr(FineTuneObjective, "total", lambda self, p: original(self, p) * float("inf"))
    model = fresh_model()
    untouched = {k: v.clone() for k, v in trainable_state(model).items()}
    with pytest.raises(NonFiniteLossError, match="2 consecutive"):
        Trainer(
            model,
            quick_config(method="full", steps=5, nan_patience=2),
            target_items,
            tmp_path / "b",
            progress=False,
        ).run(resume=False)
    for k, v in trainable_state(model).items():
        if k in untouched and "mpd" not in k and "msd" not in k:
            assert torch.equal(v, untouched[k]), f"{k} was updated by a skipped step"


def test_zero_gen_weight_skips_the_discriminators_exactly(fresh_model, target_items, tmp_path):
    """``lambda_gen = 0`` (a base whose MPD/MSD were never trained): the official generator loss has
    ``0 * gen``, and the discriminators' own update never reaches the generator, so skipping both must
    leave the generator's training bit-identical, and the discriminators untouched."""
    from tts_adapt.objective.finetune import LossWeights

    runs = {}
    for forced in (False, True):
        model = fresh_model()
        disc0 = {n: p.detach().clone() for n, p in model.mpd.named_parameters()}
        trainer = Trainer(
            model,
            quick_config(method="full", steps=2),
            target_items,
            tmp_path / str(forced),
            weights=LossWeights(gen=0.0),
            progress=False,
        )
        assert trainer.adversarial is False
        trainer.adversarial = forced  # True: the discriminator pass and update as before the skip
        trainer.run(resume=False)
        moved = any(not torch.equal(p, disc0[n]) for n, p in model.mpd.named_parameters())
        runs[forced] = (moved, {n: p.detach().clone() for n, p in model.decoder.named_parameters()})
    assert runs[True][0] and not runs[False][0]
    skipped, computed = runs[False][1], runs[True][1]
    init = dict(fresh_model().decoder.named_parameters())
    assert any(not torch.equal(skipped[n], init[n]) for n in skipped)  # the generator did train
    assert all(torch.equal(skipped[n], computed[n]) for n in skipped)


def test_batches_are_the_official_random_ones_unless_length_grouping_is_asked(
    fresh_model, prepared_synthetic, tmp_path
):
    """Official ``DataLoader(shuffle=True, drop_last=True)``: every epoch ``n // batch`` batches of
    exactly ``batch`` utterances, which utterances go together changing from epoch to epoch."""
    from tts_adapt.data import FrameBudgetBatchSampler, RandomBatchSampler

    items = list(prepared_synthetic.items)[:9]
    trainer = Trainer(
        fresh_model(), quick_config(method="lora", batch_size=4), items, tmp_path, progress=False
    )
    assert isinstance(trainer.sampler, RandomBatchSampler)
    epochs = [trainer.sampler.batches(e) for e in range(3)]
    assert all(len(b) == 9 // 4 and all(len(x) == 4 for x in b) for b in epochs)
    assert len({frozenset(frozenset(x) for x in b) for b in epochs}) > 1
    grouped = quick_config(method="lora", batch_size=4, batching="length")
    trainer = Trainer(fresh_model(), grouped, items, tmp_path / "length", progress=False)
    assert isinstance(trainer.sampler, FrameBudgetBatchSampler)
    assert sum(len(x) for x in trainer.sampler.batches(0)) == 9  # the partial batch is kept
