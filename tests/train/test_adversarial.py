"""Adversarial / feature-matching losses on small tensors with hand-computed values."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.models.styletts2.discriminators import (
    MultiPeriodDiscriminator,
    MultiResSpecDiscriminator,
    WavLMDiscriminator,
)
from tts_adapt.train.adversarial import (
    discriminator_loss_from_outputs,
    feature_matching_loss,
    generator_loss_from_outputs,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mpd_msd_discriminator_loss,
    mpd_msd_generator_loss,
    slm_discriminator_loss,
    slm_discriminator_scores,
    slm_feature_matching_loss,
    slm_generator_loss,
    stack_slm_hidden_states,
    tprls_discriminator_loss,
    tprls_generator_loss,
)


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# Values chosen to be exact in binary so the median comparisons have no rounding ties.
REAL = [t([0.625, 0.75, 0.5625, 1.0]), t([0.0, 0.5], [1.0, 0.25])]
FAKE = [t([0.5, 0.5, 0.5, 0.5]), t([0.25, 0.5], [0.5, 0.5])]


def test_lsgan_losses():
    # disc 0: mean((1-r)^2) = (0.140625 + 0.0625 + 0.19140625 + 0) / 4, mean(g^2) = 0.25
    # disc 1: mean((1-r)^2) = (1 + 0.25 + 0 + 0.5625) / 4, mean(g^2) = (0.0625 + 0.25 * 3) / 4
    d0 = (0.140625 + 0.0625 + 0.19140625) / 4 + 0.25
    d1 = 1.8125 / 4 + 0.8125 / 4
    assert lsgan_discriminator_loss(REAL, FAKE).item() == pytest.approx(d0 + d1, abs=1e-12)
    # generator: mean((1-g)^2): disc 0 = 0.25; disc 1 = (0.5625 + 0.25 * 3) / 4
    assert lsgan_generator_loss(FAKE).item() == pytest.approx(0.25 + 1.3125 / 4, abs=1e-12)
    with pytest.raises(ValueError, match="real"):
        lsgan_discriminator_loss(REAL, FAKE[:1])


def test_tprls_discriminator_hand_values():
    # disc 0: d = r - g = [0.125, 0.25, 0.0625, 0.5]; lower median 0.125; below: [0.0625]
    #   mean((0.0625 - 0.125)^2) = 0.00390625 < tau -> 0.00390625
    # disc 1: d = [-0.25, 0, 0.5, -0.25]; lower median -0.25; nothing strictly below -> 0 (official: NaN)
    assert tprls_discriminator_loss(REAL[:1], FAKE[:1]).item() == pytest.approx(0.00390625, abs=1e-12)
    assert tprls_discriminator_loss(REAL[1:], FAKE[1:]).item() == 0.0
    # truncation at tau: d = [0, 1, 2] -> median 1, below [0] -> (0 - 1)^2 = 1 -> min(0.04, 1)
    assert tprls_discriminator_loss([t([0.0, 1.0, 2.0])], [t([0.0, 0.0, 0.0])]).item() == pytest.approx(0.04)
    assert tprls_discriminator_loss(REAL, FAKE, tau=0.5).item() == pytest.approx(0.00390625, abs=1e-12)


def test_tprls_generator_swaps_roles():
    # disc 0: d = g - r = [-0.125, -0.25, -0.0625, -0.5]; lower median -0.25; below: [-0.5]
    #   (-0.5 + 0.25)^2 = 0.0625 -> min(0.04, 0.0625) = 0.04
    # disc 1: d = [0.25, 0, -0.5, 0.25]; lower median 0; below: [-0.5] -> 0.25 -> 0.04
    assert tprls_generator_loss(REAL[:1], FAKE[:1]).item() == pytest.approx(0.04)
    assert tprls_generator_loss(REAL, FAKE).item() == pytest.approx(0.08)
    assert tprls_generator_loss(REAL, FAKE, tau=1.0).item() == pytest.approx(0.0625 + 0.25)


def test_tprls_identical_scores_are_finite_and_differentiable():
    r = torch.zeros(2, 5, requires_grad=True)
    loss = tprls_discriminator_loss([r], [r.detach()]) + lsgan_discriminator_loss([r], [r.detach()])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(r.grad).all()


def test_feature_matching_hand_value():
    fr = [[t([1.0, 2.0]), t([[0.0, 0.0], [1.0, 1.0]])], [t([3.0])]]
    fg = [[t([0.0, 2.5]), t([[1.0, 0.0], [1.0, -1.0]])], [t([1.0])]]
    # 2 * (mean(1, 0.5) + mean(1, 0, 0, 2) + 2) = 2 * (0.75 + 0.75 + 2)
    assert feature_matching_loss(fr, fg).item() == pytest.approx(7.0)


def _outputs(real, fake, fr, fg):
    return real, fake, fr, fg


def test_combined_losses_hand_values():
    fr = [[t([1.0, 2.0])], [t([0.5])]]
    fg = [[t([0.0, 2.0])], [t([0.0])]]
    mpd_out = _outputs(REAL[:1], FAKE[:1], fr[:1], fg[:1])
    msd_out = _outputs(REAL[1:], FAKE[1:], fr[1:], fg[1:])
    # discriminator: lsgan(msd) + lsgan(mpd) + tprls_d(mpd) + tprls_d(msd)
    d_msd = 1.8125 / 4 + 0.8125 / 4
    d_mpd = (0.140625 + 0.0625 + 0.19140625) / 4 + 0.25
    expected_d = d_msd + d_mpd + 0.00390625 + 0.0
    assert discriminator_loss_from_outputs(mpd_out, msd_out).item() == pytest.approx(expected_d, abs=1e-12)
    # generator: lsgan_g(msd) + lsgan_g(mpd) + fm(msd) + fm(mpd) + tprls_g(mpd) + tprls_g(msd)
    expected_g = 1.3125 / 4 + 0.25 + 2 * 0.5 + 2 * 0.5 + 0.04 + 0.04
    assert generator_loss_from_outputs(mpd_out, msd_out).item() == pytest.approx(expected_g, abs=1e-12)


@pytest.fixture(scope="module")
def mpd_msd():
    torch.manual_seed(0)
    return MultiPeriodDiscriminator().eval(), MultiResSpecDiscriminator().eval()


def test_waveform_wrappers_use_both_discriminators(mpd_msd):
    mpd, msd = mpd_msd
    mpd.requires_grad_(False)  # 41 M parameters: skip their gradients to keep the test fast
    torch.manual_seed(1)
    real = 0.1 * torch.randn(1, 1, 1200)
    fake = (0.1 * torch.randn(1, 1, 1200)).requires_grad_(True)
    with torch.no_grad():
        mpd_out, msd_out = mpd(real, fake), msd(real, fake)
        expected_g = generator_loss_from_outputs(mpd_out, msd_out)
        expected_d = discriminator_loss_from_outputs(mpd_out, msd_out)
    loss_d = mpd_msd_discriminator_loss(mpd, msd, real, fake)
    assert loss_d.item() == pytest.approx(expected_d.item(), rel=1e-6)
    loss_d.backward()
    assert fake.grad is None  # the discriminator step never reaches the generator
    assert msd.discriminators[0].out.weight_v.grad is not None
    loss_g = mpd_msd_generator_loss(mpd, msd, real, fake)
    assert loss_g.item() == pytest.approx(expected_g.item(), rel=1e-6)
    loss_g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_stack_slm_hidden_states_layout():
    hidden = [torch.randn(2, 7, 3) for _ in range(4)]  # 4 layers, 7 frames, width 3
    stacked = stack_slm_hidden_states(hidden)
    assert stacked.shape == (2, 12, 7)
    for layer in range(4):
        for h in range(3):
            assert torch.equal(stacked[:, layer * 3 + h, :], hidden[layer][:, :, h])
    with pytest.raises(ValueError):
        stack_slm_hidden_states([])


def test_slm_feature_matching_hand_value():
    real = [t([[1.0, 2.0]]), t([[0.0, 4.0]])]
    fake = [t([[0.0, 2.0]]).requires_grad_(True), t([[1.0, 1.0]]).requires_grad_(True)]
    loss = slm_feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(0.5 + 2.0)
    loss.backward()
    assert torch.equal(fake[0].grad, t([[-0.5, 0.0]]))


def test_slm_adversarial_losses():
    torch.manual_seed(2)
    wd = WavLMDiscriminator(slm_hidden=3, slm_layers=4, initial_channel=4)
    real = [torch.randn(2, 9, 3) for _ in range(4)]
    fake = [torch.randn(2, 9, 3, requires_grad=True) for _ in range(4)]
    with torch.no_grad():
        s_real = wd(torch.cat([h.transpose(1, 2) for h in real], dim=1))
        s_fake = wd(torch.cat([h.transpose(1, 2) for h in fake], dim=1))
    assert torch.allclose(slm_discriminator_scores(wd, real), s_real)
    loss_d = slm_discriminator_loss(wd, real, fake)
    assert loss_d.item() == pytest.approx((((1 - s_real) ** 2).mean() + (s_fake**2).mean()).item(), rel=1e-6)
    loss_d.backward()
    assert all(h.grad is None for h in fake) and wd.pre.weight_v.grad is not None
    loss_g = slm_generator_loss(wd, fake)
    assert loss_g.item() == pytest.approx(((1 - s_fake) ** 2).mean().item(), rel=1e-6)
    loss_g.backward()
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in fake)


def _random_outputs(batch: int, seed: int, *, tie_row: int | None = None):
    """MPD- and MSD-shaped outputs (two sub-discriminators each, two feature maps per sub-discriminator)
    in float64 with gradients; row ``tie_row`` gets identical real and generated scores (an empty TPRLS
    selection)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)

    def disc(shapes):
        real = [rand(batch, *s) for s in shapes]
        fake = [rand(batch, *s) for s in shapes]
        if tie_row is not None:
            fake = [
                torch.cat([f[:tie_row], r[tie_row : tie_row + 1], f[tie_row + 1 :]])
                for f, r in zip(fake, real)
            ]
        fmap_r = [[rand(batch, 3, *s), rand(batch, 2, *s)] for s in shapes]
        fmap_g = [[rand(batch, 3, *s), rand(batch, 2, *s)] for s in shapes]
        return real, fake, fmap_r, fmap_g

    return disc([(7, 2), (5, 3)]), disc([(9,), (4, 4)])


def _row(out, b):
    real, fake, fmap_r, fmap_g = out
    return (
        [r[b : b + 1] for r in real],
        [f[b : b + 1] for f in fake],
        [[t[b : b + 1] for t in maps] for maps in fmap_r],
        [[t[b : b + 1] for t in maps] for maps in fmap_g],
    )


@pytest.mark.parametrize("kind", ["discriminator", "generator"])
def test_per_utterance_losses_equal_each_row_alone(kind):
    """The batched per-utterance losses against the oracle of their definition: the scalar loss (pinned
    to hand values above) of each row as a batch of one, values and gradients, in float64; row 1 has
    identical real and generated scores, where the TPRLS selection is empty and the term is 0."""
    from tts_adapt.objective.adversarial import (
        discriminator_loss_per_utterance,
        generator_loss_per_utterance,
    )

    batched, scalar = {
        "discriminator": (discriminator_loss_per_utterance, discriminator_loss_from_outputs),
        "generator": (generator_loss_per_utterance, generator_loss_from_outputs),
    }[kind]
    mpd_out, msd_out = _random_outputs(4, seed=3, tie_row=1)
    leaves = [t for out in (mpd_out, msd_out) for t in (*out[0], *out[1]) if t.is_leaf]
    leaves += [t for out in (mpd_out, msd_out) for maps in (*out[2], *out[3]) for t in maps]
    weights = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)

    got = batched(mpd_out, msd_out)
    grads_got = torch.autograd.grad((got * weights).sum(), leaves, allow_unused=True)
    want = torch.stack([scalar(_row(mpd_out, b), _row(msd_out, b)) for b in range(4)])
    grads_want = torch.autograd.grad((want * weights).sum(), leaves, allow_unused=True)

    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_got, grads_want, strict=True):
        if a is None or b is None:
            assert a is None and b is None or float((a if a is not None else b).abs().max()) == 0
        else:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
