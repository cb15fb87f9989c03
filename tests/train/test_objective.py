"""The fine-tuning objective's pieces: alignment search, losses, and decomposition over utterances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tts_adapt.data import TTSDataset, collate
from tts_adapt.models.styletts2.alignment import monotonic_alignment
from tts_adapt.objective import FineTuneObjective, decoder_crop_frames
from tts_adapt.objective.spectral import MultiResolutionMelLoss


def brute_force_path(value: np.ndarray) -> float:
    """Best total over all monotonic paths (each token >= 1 frame, frames in order)."""
    tokens, frames = value.shape
    best = -np.inf
    for cuts in itertools.combinations(range(1, frames), tokens - 1):
        bounds = [0, *cuts, frames]
        total = sum(value[t, bounds[t] : bounds[t + 1]].sum() for t in range(tokens))
        best = max(best, total)
    return best


@pytest.mark.parametrize("tokens,frames", [(1, 4), (3, 5), (4, 9), (5, 5)])
def test_alignment_is_the_best_monotonic_path(tokens, frames):
    rng = np.random.default_rng(tokens * 10 + frames)
    value = rng.random((tokens, frames)).astype(np.float32)
    attn = torch.zeros(1, tokens + 2, frames + 3)
    attn[0, :tokens, :frames] = torch.from_numpy(value)
    path = monotonic_alignment(attn, torch.tensor([tokens]), torch.tensor([frames]))[0]
    assert path[tokens:].sum() == 0 and path[:, frames:].sum() == 0
    p = path[:tokens, :frames].numpy()
    assert (p.sum(0) == 1).all(), "each frame belongs to exactly one token"
    assert (p.sum(1) >= 1).all(), "each token gets at least one frame"
    owner = p.argmax(0)
    assert (np.diff(owner) >= 0).all() and (np.diff(owner) <= 1).all(), "monotonic, one token at a time"
    assert float((p * value).sum()) == pytest.approx(brute_force_path(value), rel=1e-6)


def test_too_few_frames_fall_back_to_a_proportional_alignment(caplog):
    path = monotonic_alignment(torch.rand(1, 4, 3), torch.tensor([4]), torch.tensor([3]))[0]
    assert (path.sum(0) == 1).all() and "proportional" in caplog.text


def test_mel_loss_is_per_utterance():
    loss = MultiResolutionMelLoss()
    torch.manual_seed(0)
    real = torch.randn(3, 1, 12000) * 0.1
    fake = real + 0.05 * torch.randn_like(real)
    both = loss(fake, real)
    assert both.shape == (3,)
    for b in range(3):
        torch.testing.assert_close(loss(fake[b : b + 1], real[b : b + 1])[0], both[b])
    assert float(loss(real, real).abs().max()) == 0.0
    assert float(loss(real + 0.2 * torch.randn_like(real), real).mean()) > float(both.mean())


def test_duration_terms_by_hand():
    logits = torch.tensor([[[2.0, -1.0, -3.0], [0.5, 0.5, -2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
    d_gt = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    ce, dur = FineTuneObjective._duration_terms(logits, d_gt, torch.tensor([3]))
    target = torch.tensor([[1.0, 0, 0], [1, 1, 0], [1, 1, 1]])
    expected_ce = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, :3], target)
    torch.testing.assert_close(ce[0], expected_ce)
    # only the middle token counts for L1 (start and end tokens are excluded)
    torch.testing.assert_close(dur[0], (torch.sigmoid(logits[0, 1]).sum() - 2.0).abs())


def test_objective_decomposes_over_utterances(micro_base, target_items):
    """Each utterance's terms are the same in a two-utterance batch and in a batch of its row alone (the
    padding kept, as when a global batch is split across processes)."""
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.train.distributed import DistInfo, shard

    path, config = micro_base
    model = load_official(path, config).eval()
    model.text_aligner.token_mask_prob = 0.0
    obj = FineTuneObjective(model, max_len=80, seed=3, estimate_sigma_data=False)
    ds = TTSDataset(target_items, seed=0)
    batch = collate([ds[0], ds[1]])
    crop = decoder_crop_frames(batch.mel_lengths, 80)
    with torch.no_grad():
        together = obj.generator_pass(batch, step=5, crop_frames=crop)
        obj.adversarial_terms(together)
        for b in range(len(batch)):
            alone = obj.generator_pass(shard(batch, DistInfo(b, len(batch))), step=5, crop_frames=crop)
            obj.adversarial_terms(alone)
            for name, value in together.terms.items():
                torch.testing.assert_close(alone.terms[name][0], value[b], rtol=2e-4, atol=2e-5, msg=name)
    assert set(together.terms) >= {"mel", "gen", "F0", "norm", "dur", "ce", "s2s", "mono", "sty", "diff"}


def test_reconstruction_from_ground_truth_prosody(micro_base, target_items):
    """The lazy reconstruction (the SLM discriminator's "real" on half its steps) is the decoder on
    ground-truth F0/energy: the crops' shape, no graph, repeatable, and not the predicted-F0 output."""
    from tts_adapt.models.styletts2 import load_official

    path, config = micro_base
    obj = FineTuneObjective(load_official(path, config).eval(), max_len=80, seed=3, estimate_sigma_data=False)
    batch = collate([TTSDataset(target_items, seed=0)[i] for i in range(2)])
    p = obj.generator_pass(batch, step=5, crop_frames=decoder_crop_frames(batch.mel_lengths, 80))
    rec = p.reconstruct()
    assert rec.shape == p.real.shape and not rec.requires_grad and p.generated.requires_grad
    torch.testing.assert_close(rec, p.reconstruct())
    assert not torch.allclose(rec, p.generated.detach(), atol=1e-3)


def test_too_short_batches_are_skipped(micro_base, target_items):
    from tts_adapt.models.styletts2 import load_official

    path, config = micro_base
    obj = FineTuneObjective(load_official(path, config).eval(), max_len=80)
    batch = collate([TTSDataset(target_items, seed=0)[0]])
    assert obj.generator_pass(batch, 0, crop_frames=30) is None
