"""Curvature of the training objective: per-utterance rows, padded tokens left out, every term reached."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.curvature import estimate
from tts_adapt.curvature.objectives import TrainingObjective, get_objective
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
    curv = estimate(tiny_ckpt, [batch], get_objective("text", max_len=80), "kfac", targets, progress=False)
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
    """Diag with a batch of two (per-utterance styles run one row at a time and say so)."""
    batch = make_batch()
    curv = estimate(micro_model, [batch], get_objective("styletts2", max_len=80), "diag", progress=False)
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


def test_every_default_target_of_the_base_model_gets_gradient():
    """The shipped model's decoder source has no weights on the gradient path (iSTFTNet runs its
    harmonic source under ``no_grad``, as the original does; the harmonic decoder's excitation has no
    weights at all), so no source layer is a default target: autograd is the oracle, every default
    target must receive gradient from the full objective (a silent one had zero curvature and an
    adapter that never trained)."""
    from tts_adapt.models.styletts2 import default_model_paths, load_official

    model = load_official(*default_model_paths()).eval()
    curv = estimate(model, [make_batch()], get_objective("styletts2", max_len=80), "diag", progress=False)
    assert {n.split(".")[0] for n in curv.layers} >= {"decoder", "predictor", "diffusion", "bert"}
    assert not any("m_source" in n for n in curv.layers)
    assert [n for n, t in curv.layers.items() if t["diag"].abs().sum() == 0] == []


@pytest.mark.parametrize("method", ["diag", "kfac"])
def test_batched_statistics_equal_the_sum_over_utterances(micro_model, method):
    """Regression: diag/KFAC with a batch of two equal the sums of each utterance alone (its padded row,
    as a process of a split batch sees it). The oracle is additivity over utterances: the per-utterance
    squared gradients of a batch are those of its rows computed separately. The ``mel`` objective keeps
    the diffusion's batch-level ``sigma_data`` out; global styles, PL-BERT, the predictor (padded text)
    and the decoder are all on its path."""
    from tts_adapt.train.distributed import DistInfo, shard

    micro_model.text_aligner.token_mask_prob = 0.0
    batch = make_batch()
    targets = ["bert_encoder", "predictor_encoder.unshared", "predictor.duration_proj.linear_layer"]
    targets += ["decoder.decode.0", "style_encoder.unshared"]
    objective = get_objective("mel", max_len=80)
    kw = {"targets": targets, "progress": False}
    together = estimate(micro_model, [batch], objective, method, **kw)
    layers = sorted(together.layers)  # module targets resolve to their layers ("decoder.decode.0.conv1")
    assert all(any(n == t or n.startswith(t + ".") for n in layers) for t in targets)
    rows = [shard(batch, DistInfo(b, len(batch))) for b in range(len(batch))]

    def assert_close_in_norm(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
        # Gradient-side statistics (diag, KFAC's G) go through ReLU/LeakyReLU kinks: where an input lies
        # within rounding of zero, batch-of-two and batch-of-one kernels can take different slopes. With
        # oneDNN's AVX2 kernels that moved these statistics by up to 1.4 % in norm (1e-4 with AVX-512);
        # the bugs this test guards against (mixed-up rows, padded tokens) err by far more than 3 %.
        gap = float((got - want).norm()) / (float(want.norm()) + 1e-30)
        assert gap <= 3e-2, (name, gap)

    if method == "diag":
        alone = [estimate(micro_model, [r], objective, "diag", **kw) for r in rows]
        for name in layers:
            expected = sum(c.layers[name]["diag"] for c in alone) / len(rows)
            assert_close_in_norm(together.layers[name]["diag"], expected, name)
    else:  # KFAC: A and G sum over frames and utterances, batched or not
        both = estimate(micro_model, rows, objective, "kfac", **kw)
        for name in layers:
            want = both.layers[name]["A"]  # forward side: no kinks, float32 sums in another order
            atol = 1e-4 * float(want.abs().max())  # (seen: 1.1e-5)
            torch.testing.assert_close(together.layers[name]["A"], want, rtol=1e-3, atol=atol)
            assert_close_in_norm(together.layers[name]["G"], both.layers[name]["G"], name)
    assert together.info["bert_encoder"]["frames"] == int(batch.token_lengths.sum())


@pytest.mark.slow
def test_full_objective_on_tiny_checkpoint(tiny_ckpt):
    """The whole training objective's KFAC on the official-format checkpoint (LibriTTS-width HiFiGAN):
    every target layer gets a gradient. Peak memory about 6 GB, mostly the decoder's snake activations
    kept for the backward pass (as in official training); hence ``slow``."""
    curv = estimate(tiny_ckpt, [make_batch()], get_objective("styletts2", max_len=80), "kfac", progress=False)
    assert all(t["G"].abs().sum() > 0 for t in curv.layers.values())


def test_objective_refuses_short_utterances(micro_model):
    with pytest.raises(ValueError, match="shorter than"):
        get_objective("styletts2")(micro_model, make_batch(((8, 60), (6, 50))))
    with pytest.raises(ValueError, match="curvature terms"):
        TrainingObjective(terms=("gan",))
    with pytest.raises(ValueError, match="needs WavLM weights"):
        TrainingObjective(terms=("mel", "slm"))  # the slm term only with a speech LM (--objective full)


def test_default_objective_is_the_training_loss_without_adversarial_terms(micro_model):
    """The curvature's default loss is the trainer's total minus ``gen`` (the same FineTuneObjective,
    weights of the config, crop = max_len)."""
    from tts_adapt.objective import FineTuneObjective, LossWeights

    batch = make_batch()
    weights = LossWeights.from_config(micro_model.config.get("loss_params"))
    with torch.no_grad():
        torch.manual_seed(0)
        ours = get_objective("styletts2", max_len=80)(micro_model, batch)
        torch.manual_seed(0)
        trainer = FineTuneObjective(micro_model, weights, max_len=80)
        sigma = micro_model.diffusion.sigma_data
        p = trainer.generator_pass(batch, 0)
        micro_model.diffusion.sigma_data = sigma
        trainer.adversarial_terms(p)
        expected = trainer.total(p) - weights.gen * p.terms["gen"]
    torch.testing.assert_close(ours, expected)
    assert set(p.terms) >= {"mel", "sty", "F0", "norm", "dur", "ce", "s2s", "mono", "diff", "gen"}


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
@pytest.mark.parametrize("method", ["kfac", "diag", "ekfac"])
def test_finetune_objective_plugs_in(micro_model, method):
    """``--objective finetune`` (with the adversarial term) for every method, batches of two."""
    curv = estimate(
        micro_model,
        [make_batch()],
        get_objective("finetune", max_len=80),
        method,
        ["bert_encoder", "decoder.decode.0", "predictor_encoder.unshared"],
        progress=False,
    )
    assert curv.num_utterances == 2
    key = {"kfac": "G", "diag": "diag", "ekfac": "scale"}[method]
    assert all(t[key].abs().sum() > 0 for t in curv.layers.values())


def test_waveform_crops_never_run_past_a_wave():
    """``crop_waves``: equal-length crops whatever the wave lengths; samples past a wave's end are 0."""
    from tts_adapt.objective.crops import crop_waves

    waves = torch.arange(1.0, 2 * 3600 + 1).reshape(2, 3600)  # 2 rows of 3600 samples
    lengths = torch.tensor([3600, 3000])
    # aligned frames (600 samples each) 1..3 of row 0, and 4..6 of row 1, which ends 600 samples in
    out = crop_waves(waves, lengths, [0, 1], [1, 4], 2)
    assert out.shape == (2, 1200)
    torch.testing.assert_close(out[0], waves[0, 600:1800])
    torch.testing.assert_close(out[1, :600], waves[1, 2400:3000])
    assert float(out[1, 600:].abs().sum()) == 0.0


def test_curvature_on_waves_shorter_than_their_mel_frames(micro_model):
    """Regression: a wave has ``S // 300 + 1`` mel frames, so the samples under the last crop can end
    before ``frames * 300``; the crop used to be sliced and stacked (``stack expects each tensor to be
    equal size, ... [89929] ... [90000]``). Here both waves end 700 samples before their last frame."""
    batch = make_batch()
    short = batch.mel_lengths * 300 - 700
    batch.wave_lengths = short
    batch.waves = batch.waves[:, : int(short.max())].clone()
    for b, n in enumerate(short.tolist()):
        batch.waves[b, n:] = 0
    curv = estimate(
        micro_model, [batch], get_objective("mel", max_len=98), "kfac", ["decoder.decode.0"], progress=False
    )
    assert curv.num_utterances == 2 and curv.layers
    assert all(n.startswith("decoder.decode.0.") for n in curv.layers)
    assert all(bool(t["G"].abs().sum() > 0) for t in curv.layers.values())


def test_full_objective_adds_the_wavlm_term_and_dropout_is_the_official_split(micro_model):
    """``--objective full`` is the reference's loss: every term, WavLM's feature matching included
    (``lambda_slm`` x the speech LM's feature loss on the same crops); ``--dropout`` computes it in the
    official training-time modes (text-side modules in training mode, decoder and encoders in eval)."""
    from tts_adapt.models.styletts2.model import StyleTTS2
    from tts_adapt.train.slm import SpeechLM

    from ..train.test_slm import tiny_wavlm

    model = StyleTTS2(micro_model.config)
    model.load_state_dict(micro_model.state_dict())
    model.eval()
    model.text_aligner.token_mask_prob = 0.0
    slm = SpeechLM(tiny_wavlm())
    batch = make_batch(((10, 90),))
    full = get_objective("full", max_len=80, slm=slm)
    with torch.no_grad():
        total = full(model, batch)
        obj = full.objective_for(model)
        p = obj.generator_pass(batch, 0)
        obj.adversarial_terms(p)
        slm_term = slm.feature_loss(p.real, p.generated)
    assert set(p.terms) == {"mel", "gen", "slm", "mono", "s2s", "F0", "norm", "dur", "ce", "sty", "diff"}
    torch.testing.assert_close(p.terms["slm"], slm_term)
    torch.testing.assert_close(total, sum(getattr(obj.weights, t) * v for t, v in p.terms.items()))
    with torch.no_grad():
        get_objective("text", max_len=80, dropout=True)(model, batch)
    assert model.predictor.training and model.bert.training and model.text_aligner.training
    assert not model.decoder.training and not model.style_encoder.training and not model.diffusion.training
