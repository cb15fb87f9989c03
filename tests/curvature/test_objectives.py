"""The StyleTTS 2 per-utterance objective on the fixtures' tiny checkpoint, and monotonic alignment search."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.curvature import estimate
from tts_adapt.curvature.objectives import StyleTTS2Objective, get_objective
from tts_adapt.data import Batch


def make_batch(lengths=((12, 120), (9, 100)), seed: int = 0) -> Batch:
    """A padded batch of random tokens/mels/waves (tokens, frames) per utterance."""
    g = torch.Generator().manual_seed(seed)
    n = len(lengths)
    lt = torch.tensor([t for t, _ in lengths])
    lm = torch.tensor([m for _, m in lengths])
    tokens = torch.zeros(n, int(lt.max()), dtype=torch.long)
    mels = torch.zeros(n, 80, int(lm.max()))
    waves = torch.zeros(n, int(lm.max()) * 300)
    for i, (t, m) in enumerate(lengths):
        tokens[i, 1 : t - 1] = torch.randint(1, 170, (t - 2,), generator=g)
        mels[i, :, :m] = torch.randn(80, m, generator=g) * 1.5 - 4
        waves[i, : m * 300] = 0.1 * torch.randn(m * 300, generator=g)
    return Batch(
        ids=[f"u{i}" for i in range(n)],
        speakers=["s"] * n,
        speaker_ids=torch.zeros(n, dtype=torch.long),
        phonemes=[""] * n,
        texts=[""] * n,
        tokens=tokens,
        token_lengths=lt,
        text_mask=torch.arange(tokens.shape[1])[None] >= lt[:, None],
        waves=waves,
        wave_lengths=lm * 300,
        mels=mels,
        mel_lengths=lm,
        mel_mask=torch.arange(mels.shape[2])[None] >= lm[:, None],
        ref_mels=torch.randn(n, 80, 80, generator=g) - 4,
        ref_mel_lengths=torch.full((n,), 80),
        ref_ids=["u0"] * n,
    )


def subset(batch: Batch, i: int) -> Batch:
    t, m = int(batch.token_lengths[i]), int(batch.mel_lengths[i])
    return Batch(
        ids=[batch.ids[i]],
        speakers=[batch.speakers[i]],
        speaker_ids=batch.speaker_ids[i : i + 1],
        phonemes=[""],
        texts=[""],
        tokens=batch.tokens[i : i + 1, :t],
        token_lengths=batch.token_lengths[i : i + 1],
        text_mask=batch.text_mask[i : i + 1, :t],
        waves=batch.waves[i : i + 1, : m * 300],
        wave_lengths=batch.wave_lengths[i : i + 1],
        mels=batch.mels[i : i + 1, :, :m],
        mel_lengths=batch.mel_lengths[i : i + 1],
        mel_mask=batch.mel_mask[i : i + 1, :m],
        ref_mels=batch.ref_mels[i : i + 1],
        ref_mel_lengths=batch.ref_mel_lengths[i : i + 1],
        ref_ids=["u0"],
    )


@pytest.fixture(scope="module")
def tiny_ckpt(fixtures_dir):
    from tts_adapt.models.styletts2 import load_official

    d = fixtures_dir / "checkpoint_set"
    return load_official(d / "tiny_epochs_2nd.pth", d / "tiny_config.yml").eval()


def test_text_terms_are_per_utterance(micro_model):
    obj = StyleTTS2Objective()
    batch = make_batch()
    with torch.no_grad():
        together = obj.terms(micro_model, batch, which={"dur", "ce"})
        for i in range(len(batch)):
            alone = obj.terms(micro_model, subset(batch, i), which={"dur", "ce"})
            for k in ("dur", "ce"):
                torch.testing.assert_close(together[k][i], alone[k][0], rtol=1e-4, atol=1e-5)


def test_text_objective_curvature_on_tiny_checkpoint(tiny_ckpt):
    batch = make_batch()
    targets = [
        "bert",
        "bert_encoder",
        "predictor",
        "predictor_encoder",
        "diffusion",
        "decoder.decode.0",
        "style_encoder",
    ]
    curv = estimate(tiny_ckpt, [batch], get_objective("text"), "kfac", targets, progress=False)
    valid_tokens = int(batch.token_lengths.sum())
    assert curv.info["bert_encoder"]["frames"] == valid_tokens  # padded tokens excluded
    shared_q = "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query"
    assert (
        curv.info[shared_q]["frames"] == 2 * valid_tokens
    )  # ALBERT's one layer runs twice in the tiny PL-BERT
    assert curv.info["predictor_encoder.unshared"]["frames"] == len(batch)  # one style per utterance
    for name, t in curv.layers.items():
        assert torch.isfinite(t["A"]).all() and torch.isfinite(t["G"]).all()
        top = name.split(".")[0]
        nonzero = bool(t["G"].abs().sum() > 0)
        if top in ("bert_encoder", "diffusion", "predictor_encoder") or name == shared_q:
            assert nonzero, name
        if top in ("decoder", "style_encoder"):
            assert not nonzero, name  # the text objective never reaches the acoustic path


def test_full_objective_reaches_every_adapted_module(micro_model):
    batch = make_batch()
    curv = estimate(micro_model, [batch], StyleTTS2Objective(crop_frames=80), "diag", progress=False)
    reached = {n.split(".")[0] for n, t in curv.layers.items() if t["diag"].abs().sum() > 0}
    assert reached == {
        "bert",
        "bert_encoder",
        "predictor",
        "decoder",
        "style_encoder",
        "predictor_encoder",
        "diffusion",
    }
    silent = [n for n, t in curv.layers.items() if t["diag"].abs().sum() == 0]
    assert silent == []  # every default target is on StyleTTS 2's path (PL-BERT's pooler is not a target)


@pytest.mark.slow
def test_full_objective_on_tiny_checkpoint(tiny_ckpt):
    curv = estimate(tiny_ckpt, [make_batch()], StyleTTS2Objective(crop_frames=80), "kfac", progress=False)
    assert all(t["G"].abs().sum() > 0 for t in curv.layers.values())


def test_objective_refuses_short_utterances(micro_model):
    with pytest.raises(ValueError, match="shorter than"):
        StyleTTS2Objective()(micro_model, make_batch(((8, 60), (6, 50))))
    with pytest.raises(ValueError, match="unknown loss terms"):
        StyleTTS2Objective(weights={"gan": 1.0})


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
def test_trainer_objective_plugs_in(micro_model):
    """``--objective finetune``: the trainer's per-utterance loss drives the same estimation."""
    from tts_adapt.curvature.objectives import TrainerObjective

    curv = estimate(
        micro_model,
        [make_batch()],
        TrainerObjective(crop_frames=80),
        "kfac",
        ["bert_encoder", "decoder.decode.0"],
        progress=False,
    )
    assert curv.num_utterances == 2
    assert all(t["G"].abs().sum() > 0 for t in curv.layers.values())
