"""Per-utterance losses for curvature estimation (``loss_fn(model, batch) -> Tensor[B]``).

The curvature of the Laplace prior is the curvature of the loss that is trained, so every objective
here is :class:`~tts_adapt.objective.finetune.FineTuneObjective`, the trainer's own objective, with
the same terms, weights (``loss_params`` of the model's config), multi-resolution mel loss, crop
length (``max_len``), random choices and per-utterance style loops. This module only picks which of
its terms enter and turns it into a ``(model, batch)`` callable:

* ``styletts2`` (default): every term but the adversarial ones (``gen``, ``slm``): they need the
  discriminators' and WavLM's state during training, which a pre-trained checkpoint does not carry
  (the discriminators of a released checkpoint are a snapshot, WavLM is external), and their
  curvature describes the discriminator game rather than the data fit;
* ``finetune``: the same plus the waveform-adversarial ``gen`` term (MPD/MSD of the checkpoint);
* ``full``: every term of the training loss, the WavLM feature-matching ``slm`` term included (needs
  WavLM weights): the loss the reference implementation's curvature pass differentiates;
* ``mel``: the mel reconstruction term only;
* ``text``: the text-side terms only (``s2s``, ``mono``, ``dur``, ``ce``, ``sty``, ``diff``): no
  decoder pass, so decoder and acoustic-style layers get no curvature; fast.

The per-batch ``sigma_data`` estimate of the diffusion runs as in training and the model's value is
restored after each batch. Run the model in ``eval()`` mode (no dropout), or pass ``dropout=True`` for
the official training-time split (dropout in the text-side modules, as in the reference's pass).
``reconstruction=True`` also runs, without a graph, the decoder on ground-truth F0 and energy, as the
official loop does every step (for the SLM stage): hooks that count every forward call (the reference
scaling) then see the same calls as the reference's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..objective.crops import MIN_CROP_MEL_FRAMES
from ..objective.finetune import TERMS, FineTuneObjective, LossWeights
from ..objective.modes import set_training_modes

ADVERSARIAL = ("gen", "slm")
TEXT_TERMS = ("s2s", "mono", "dur", "ce", "sty", "diff")
ACOUSTIC_TERMS = ("F0", "norm", "mel")


class TrainingObjective:
    """``(model, batch) -> Tensor[B]``: the weighted sum of the chosen fine-tuning terms per utterance."""

    def __init__(
        self,
        terms: tuple[str, ...] | None = None,
        max_len: int = 300,
        weights: LossWeights | None = None,
        f0_source: str | None = None,
        seed: int = 0,
        slm: nn.Module | None = None,
        dropout: bool = False,
        reconstruction: bool = False,
    ) -> None:
        terms = tuple(t for t in TERMS if t not in ADVERSARIAL) if terms is None else tuple(terms)
        unknown = set(terms) - set(TERMS)
        if unknown or not terms:
            raise ValueError(f"curvature terms {list(terms)}: expected a non-empty subset of {list(TERMS)}")
        if "slm" in terms and slm is None:
            raise ValueError(
                "the slm term (WavLM feature matching) needs WavLM weights (--wavlm FOLDER, or the "
                "config's model_params.slm.model in the local Hugging Face cache)"
            )
        if max_len < MIN_CROP_MEL_FRAMES:
            raise ValueError(f"max_len must be >= {MIN_CROP_MEL_FRAMES} mel frames, got {max_len}")
        self.terms = terms
        self.max_len = int(max_len)
        self.weights = weights
        self.f0_source = f0_source
        self.seed = int(seed)
        self.slm = slm if "slm" in terms else None
        self.dropout = bool(dropout)
        self.reconstruction = bool(reconstruction)
        self._objective: FineTuneObjective | None = None
        self._model_id: int | None = None

    def objective_for(self, model: nn.Module) -> FineTuneObjective:
        if self._objective is None or self._model_id != id(model):
            weights = self.weights or LossWeights.from_config(
                (getattr(model, "config", None) or {}).get("loss_params")
            )
            # F0 targets: as asked, else what the model's config says (a model without a trained JDC
            # names pyin), else the official JDC
            f0 = self.f0_source or (getattr(model, "config", None) or {}).get("f0_source", "jdc")
            self._objective = FineTuneObjective(
                model, weights, self.max_len, f0, self.seed, self.slm, estimate_sigma_data=True
            )
            self._model_id = id(model)
        return self._objective

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        obj = self.objective_for(model)
        dev = next(model.parameters()).device
        obj.to(dev)
        batch = batch.to(dev)
        if self.dropout:
            set_training_modes(model, dropout=True)
        acoustic = bool(set(self.terms) & set(ACOUSTIC_TERMS + ("gen", "slm")))
        diffusion = bool(set(self.terms) & {"sty", "diff"})
        edm = getattr(model, "diffusion", None)  # a voice-pack model (Kokoro) has no sampler
        sigma = edm.sigma_data if edm is not None else None
        try:
            p = obj.generator_pass(batch, 0, diffusion=diffusion and edm is not None, acoustic=acoustic)
        finally:
            if edm is not None:
                edm.sigma_data = sigma
        if p is None:
            frames = int(batch.mel_lengths.min())
            raise ValueError(
                f"batch {batch.ids[:3]}: its shortest utterance has {frames} mel frames, shorter than the "
                f"{MIN_CROP_MEL_FRAMES + 2} the decoder crop needs (about 1 s; training skips such "
                "batches); filter short utterances out"
            )
        if self.reconstruction and p.reconstruct is not None:
            p.reconstruct()
        if {"gen", "slm"} & set(self.terms):
            obj.adversarial_terms(p)
        total = None
        for name in self.terms:
            if name not in p.terms:  # not in this model's training loss (s2s/mono without the aligner)
                continue
            value = getattr(obj.weights, name) * p.terms[name]
            total = value if total is None else total + value
        if total is None:
            raise ValueError(f"none of the curvature terms {list(self.terms)} is in this model's loss")
        return total


OBJECTIVES: dict[str, tuple[str, ...] | None] = {
    "styletts2": None,
    "finetune": tuple(t for t in TERMS if t != "slm"),
    "full": TERMS,
    "mel": ("mel",),
    "text": TEXT_TERMS,
}


def get_objective(name: str, **kwargs) -> Callable[[nn.Module, object], torch.Tensor]:
    """An objective by name (see the module docstring); keyword arguments go to
    :class:`TrainingObjective` (``max_len``, ``weights``, ``f0_source``, ``seed``, ``slm``, ``dropout``,
    ``reconstruction``)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {sorted(OBJECTIVES)}")
    return TrainingObjective(OBJECTIVES[name], **kwargs)
