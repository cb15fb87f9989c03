"""Adversarial and feature-matching losses of StyleTTS 2 fine-tuning (the official ``losses.py`` maths).

Waveform discriminators (``mpd``, ``msd``, see :mod:`tts_adapt.models.styletts2.discriminators`) return
``(real_scores, generated_scores, real_fmaps, generated_fmaps)``, one list entry per sub-discriminator.
On those outputs the official objective is

* discriminator: least-squares GAN ``sum_k mean((1 - D_k(y))^2) + mean(D_k(y_hat)^2)`` for MPD and MSD plus
  the truncated pointwise relativistic terms (TPRLS, Li et al. 2022, https://dl.acm.org/doi/abs/10.1145/3573834.3574506);
* generator: ``sum_k mean((1 - D_k(y_hat))^2)`` + feature matching ``2 * sum mean|f(y) - f(y_hat)|`` for
  both discriminators + the generator's TPRLS terms.

The speech-language-model (WavLM) losses take the hidden states of the SLM (one ``[B, frames, hidden]``
tensor per layer, i.e. ``output_hidden_states=True``) so they need no WavLM weights here; the caller runs
WavLM on 16 kHz audio. Every function returns a scalar tensor except the ``*_per_utterance`` pair, which
returns one loss per utterance (``[B]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "TPRLS_TAU",
    "discriminator_loss_from_outputs",
    "discriminator_loss_per_utterance",
    "feature_matching_loss",
    "generator_loss_from_outputs",
    "generator_loss_per_utterance",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "mpd_msd_discriminator_loss",
    "mpd_msd_generator_loss",
    "slm_discriminator_loss",
    "slm_discriminator_scores",
    "slm_feature_matching_loss",
    "slm_generator_loss",
    "stack_slm_hidden_states",
    "tprls_discriminator_loss",
    "tprls_generator_loss",
]

TPRLS_TAU = 0.04

MultiDiscOutput = tuple[
    Sequence[torch.Tensor],
    Sequence[torch.Tensor],
    Sequence[Sequence[torch.Tensor]],
    Sequence[Sequence[torch.Tensor]],
]


def _check_pairs(real: Sequence, fake: Sequence, what: str) -> None:
    if len(real) != len(fake):
        raise ValueError(f"{what}: {len(real)} real but {len(fake)} generated entries")
    if len(real) == 0:
        raise ValueError(f"{what}: no discriminator outputs given")


# Every loss is computed over rows: ``by_utterance`` views each tensor as ``[B, elements]`` (each
# utterance's loss as if its row were the whole batch: what a process of a split batch computes, and what
# curvature needs), ``whole_batch`` as ``[1, elements]`` (the official batch loss). Means, TPRLS medians
# and selections run over rows, so a batch of eight costs the kernels of one, not eight passes of small
# ops on slices.
Rows = Callable[[torch.Tensor], torch.Tensor]
_TD, _TG = "tprls_discriminator_loss", "tprls_generator_loss"


def by_utterance(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1)


def whole_batch(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(1, -1)


def _lsgan_discriminator(
    real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor], rows: Rows
) -> torch.Tensor:
    _check_pairs(real, fake, "lsgan_discriminator_loss")
    pairs = zip(real, fake, strict=True)
    return sum(((1 - rows(r)) ** 2).mean(1) + (rows(g) ** 2).mean(1) for r, g in pairs)


def _lsgan_generator(fake: Sequence[torch.Tensor], rows: Rows) -> torch.Tensor:
    if len(fake) == 0:
        raise ValueError("lsgan_generator_loss: no discriminator outputs given")
    return sum(((1 - rows(g)) ** 2).mean(1) for g in fake)


def _feature_matching(real_fmaps, fake_fmaps, rows: Rows) -> torch.Tensor:
    _check_pairs(real_fmaps, fake_fmaps, "feature_matching_loss")
    total = 0
    for layers_r, layers_g in zip(real_fmaps, fake_fmaps, strict=True):
        _check_pairs(layers_r, layers_g, "feature_matching_loss (layers)")
        for r, g in zip(layers_r, layers_g, strict=True):
            total = total + (rows(r) - rows(g)).abs().mean(1)
    return total * 2


def _tprls(
    first: Sequence[torch.Tensor], second: Sequence[torch.Tensor], tau: float, rows: Rows, what: str
) -> torch.Tensor:
    """Per row and summed over sub-discriminators: ``min(tau, mean((d - m)^2 over elements with first <
    second + m))`` with ``d = first - second`` and ``m`` the row's lower median of ``d``.

    The official code takes the mean of an empty selection, which is NaN (e.g. when real and generated
    scores are identical); we return 0 there, the value the term tends to as the selection empties.
    """
    _check_pairs(first, second, what)
    total = 0
    for a, b in zip(first, second, strict=True):
        a, b = rows(a), rows(b)
        diff = a - b
        median = diff.median(dim=1, keepdim=True).values
        below = a < b + median  # the official comparison, not ``diff < median`` (another rounding)
        count = below.sum(1)
        mean = torch.where(below, (diff - median) ** 2, 0.0).sum(1) / count.clamp(min=1)
        total = total + torch.where(count > 0, tau - torch.relu(tau - mean), 0.0)
    return total


def lsgan_discriminator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``sum_k mean((1 - real_k)^2) + mean(fake_k^2)``: push real scores to 1 and generated ones to 0."""
    return _lsgan_discriminator(real_scores, fake_scores, whole_batch)[0]


def lsgan_generator_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k mean((1 - fake_k)^2)``: the generator wants its scores at 1."""
    return _lsgan_generator(fake_scores, whole_batch)[0]


def feature_matching_loss(
    real_fmaps: Sequence[Sequence[torch.Tensor]], fake_fmaps: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """``2 * sum_k sum_l mean|real_kl - fake_kl|`` over sub-discriminators ``k`` and their layers ``l``."""
    return _feature_matching(real_fmaps, fake_fmaps, whole_batch)[0]


def tprls_discriminator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor], tau: float = TPRLS_TAU
) -> torch.Tensor:
    """Truncated pointwise relativistic LS loss for the discriminator.

    Per sub-discriminator with ``d = real - fake`` and ``m = median(d)`` (lower median over all elements):
    ``min(tau, mean((d - m)^2 over elements with real < fake + m))``, summed.
    """
    return _tprls(real_scores, fake_scores, tau, whole_batch, "tprls_discriminator_loss")[0]


def tprls_generator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor], tau: float = TPRLS_TAU
) -> torch.Tensor:
    """The generator's TPRLS term: the discriminator's with the roles of real and generated swapped.

    Per sub-discriminator with ``d = fake - real`` and ``m = median(d)``:
    ``min(tau, mean((d - m)^2 over elements with fake < real + m))``, summed.
    """
    return _tprls(fake_scores, real_scores, tau, whole_batch, "tprls_generator_loss")[0]


def discriminator_loss_per_utterance(
    mpd_out: MultiDiscOutput, msd_out: MultiDiscOutput, rows: Rows = by_utterance
) -> torch.Tensor:
    """MPD + MSD least-squares losses plus their TPRLS terms (the official ``DiscriminatorLoss``), one
    per row: ``[B]`` per utterance by default."""
    f_real, f_fake = mpd_out[0], mpd_out[1]
    s_real, s_fake = msd_out[0], msd_out[1]
    return (
        _lsgan_discriminator(s_real, s_fake, rows)
        + _lsgan_discriminator(f_real, f_fake, rows)
        + (_tprls(f_real, f_fake, TPRLS_TAU, rows, _TD) + _tprls(s_real, s_fake, TPRLS_TAU, rows, _TD))
    )


def generator_loss_per_utterance(
    mpd_out: MultiDiscOutput, msd_out: MultiDiscOutput, rows: Rows = by_utterance
) -> torch.Tensor:
    """Adversarial + feature-matching + TPRLS terms for the generator (the official ``GeneratorLoss``), one
    per row: ``[B]`` per utterance by default."""
    f_real, f_fake, f_fmap_r, f_fmap_g = mpd_out
    s_real, s_fake, s_fmap_r, s_fmap_g = msd_out
    return (
        _lsgan_generator(s_fake, rows)
        + _lsgan_generator(f_fake, rows)
        + _feature_matching(s_fmap_r, s_fmap_g, rows)
        + _feature_matching(f_fmap_r, f_fmap_g, rows)
        + (_tprls(f_fake, f_real, TPRLS_TAU, rows, _TG) + _tprls(s_fake, s_real, TPRLS_TAU, rows, _TG))
    )


def discriminator_loss_from_outputs(mpd_out: MultiDiscOutput, msd_out: MultiDiscOutput) -> torch.Tensor:
    """The official ``DiscriminatorLoss`` over the whole batch (a scalar)."""
    return discriminator_loss_per_utterance(mpd_out, msd_out, whole_batch)[0]


def generator_loss_from_outputs(mpd_out: MultiDiscOutput, msd_out: MultiDiscOutput) -> torch.Tensor:
    """The official ``GeneratorLoss`` over the whole batch (a scalar)."""
    return generator_loss_per_utterance(mpd_out, msd_out, whole_batch)[0]


def mpd_msd_discriminator_loss(
    mpd: nn.Module, msd: nn.Module, real_wav: torch.Tensor, fake_wav: torch.Tensor
) -> torch.Tensor:
    """Discriminator step on waveforms ``[B, 1, T]``; both inputs are detached so no gradient reaches the
    generator (the official trainer detaches them before calling ``DiscriminatorLoss``)."""
    real_wav, fake_wav = real_wav.detach(), fake_wav.detach()
    return discriminator_loss_from_outputs(mpd(real_wav, fake_wav), msd(real_wav, fake_wav))


def mpd_msd_generator_loss(
    mpd: nn.Module, msd: nn.Module, real_wav: torch.Tensor, fake_wav: torch.Tensor
) -> torch.Tensor:
    """Generator step on waveforms ``[B, 1, T]``; gradients flow into ``fake_wav``."""
    return generator_loss_from_outputs(mpd(real_wav, fake_wav), msd(real_wav, fake_wav))


def stack_slm_hidden_states(hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """SLM hidden states (``L`` tensors ``[B, frames, H]``) -> the discriminator input ``[B, L * H, frames]``
    (layer-major channels, as the official ``stack(dim=1).transpose(-1, -2).flatten(1, 2)``)."""
    if len(hidden_states) == 0:
        raise ValueError("stack_slm_hidden_states: no hidden states given")
    return torch.stack(tuple(hidden_states), dim=1).transpose(-1, -2).flatten(start_dim=1, end_dim=2)


def slm_feature_matching_loss(
    real_hidden: Sequence[torch.Tensor], fake_hidden: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``sum_l mean|real_l - fake_l|`` over SLM layers (the official ``WavLMLoss.forward``); the real
    states are detached (the official code computes them without gradients)."""
    _check_pairs(real_hidden, fake_hidden, "slm_feature_matching_loss")
    return sum(torch.mean(torch.abs(r.detach() - g)) for r, g in zip(real_hidden, fake_hidden, strict=True))


def slm_discriminator_scores(wd: nn.Module, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """Frame scores ``[B, frames]`` of the SLM discriminator for detached hidden states
    (the official ``WavLMLoss.discriminator_forward``)."""
    return wd(stack_slm_hidden_states([h.detach() for h in hidden_states]))


def slm_discriminator_loss(
    wd: nn.Module, real_hidden: Sequence[torch.Tensor], fake_hidden: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``mean((1 - wd(real))^2) + mean(wd(fake)^2)`` on detached hidden states
    (the official ``WavLMLoss.discriminator``)."""
    _check_pairs(real_hidden, fake_hidden, "slm_discriminator_loss")
    return torch.mean((1 - slm_discriminator_scores(wd, real_hidden)) ** 2) + torch.mean(
        slm_discriminator_scores(wd, fake_hidden) ** 2
    )


def slm_generator_loss(wd: nn.Module, fake_hidden: Sequence[torch.Tensor]) -> torch.Tensor:
    """``mean((1 - wd(fake))^2)``; gradients flow through the hidden states (``WavLMLoss.generator``)."""
    return torch.mean((1 - wd(stack_slm_hidden_states(fake_hidden))) ** 2)
