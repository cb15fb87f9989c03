"""Held-out pre-training loss of a model, and the Laplace prior's prediction of how much it rises.

The measured quantity is the mean per-utterance pre-training objective on utterances of the
pre-training corpus that neither the base model's training nor the curvature saw. Everything random in
the objective (crop offsets, diffusion noise) is reseeded per batch from ``(seed, batch index)``, so the
base and every adapted model are scored on exactly the same crops and noise, and a rerun gives the same
numbers.

The prediction for a curvature ``H`` is ``½·Σ_layers vec(ΔW)ᵀ H vec(ΔW)`` with ``ΔW = W_adapted − W_base``
of every layer the curvature covers, whatever the method (LoRA merged, linear, full), computed by the
prior itself (:class:`~tts_adapt.priors.LaplacePrior` in ``full`` mode at strength 1). Changes to layers
the curvature does not cover (full fine-tuning changes many) are outside every prediction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .objective import DEFAULT_OBJECTIVE, pretraining_loss_fn

log = logging.getLogger(__name__)


@dataclass
class HeldoutSpec:
    """Which utterances and which objective; two loss files compare only when these agree."""

    data: str
    subsets: list[str] | None = None
    speakers: list[str] | None = None
    max_utterances: int | None = 50
    seed: int = 0
    objective: str = DEFAULT_OBJECTIVE
    crop_frames: int = 300
    max_frames: int = 4000
    max_batch_size: int = 16

    def key(self) -> dict[str, Any]:
        return asdict(self)


def heldout_batches(spec: HeldoutSpec, progress: bool = False, text: dict[str, Any] | None = None):
    """The held-out utterances in seeded, real-length batches (the curvature's own batching); ``text``
    is the model's text convention (``config.text_settings``; None: StyleTTS 2's)."""
    from ..curvature.batches import DataSpec, corpus_batches

    batches, _ = corpus_batches(
        DataSpec(
            data=spec.data,
            subsets=spec.subsets,
            speakers=spec.speakers,
            max_utterances=spec.max_utterances,
            seed=spec.seed,
            max_frames=spec.max_frames,
            max_batch_size=spec.max_batch_size,
            text=text,
        ),
        progress=progress,
    )
    return batches


def batch_seed(seed: int, index: int) -> int:
    return (int(seed) * 1_000_003 + 104_729 + index) % (2**31 - 1)


def heldout_losses(
    model: nn.Module, batches: Sequence[Any], spec: HeldoutSpec, progress: bool = False
) -> dict[str, float]:
    """Per-utterance loss ``{utterance id: value}``; global RNGs are restored afterwards."""
    from ..utils.progress import progress_bar as tqdm
    from ..utils.seed import seed_everything

    loss_fn = pretraining_loss_fn(spec.objective, spec.crop_frames)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    state = torch.random.get_rng_state(), np.random.get_state()
    out: dict[str, float] = {}
    try:
        for i in tqdm(range(len(batches)), desc="held-out loss", disable=not progress, unit="batch"):
            batch = batches[i]
            seed_everything(batch_seed(spec.seed, i))
            with torch.no_grad():
                values = loss_fn(model, batch.to(device))
            if values.shape != (len(batch.ids),) or not torch.isfinite(values).all():
                raise RuntimeError(f"held-out loss of batch {i} is not one finite value per utterance")
            out.update(zip(batch.ids, values.double().cpu().tolist(), strict=True))
    finally:
        torch.random.set_rng_state(state[0])
        np.random.set_state(state[1])
        model.train(was_training)
    return out


def build_predictors(model: nn.Module, curvatures: Mapping[str, str]) -> dict[str, nn.Module]:
    """One unit-strength prior per curvature, centred on ``model``'s current (base) weights.

    ``curvatures``: ``{label: path or 'l2sp'}``. A curvature estimated on other weights is refused."""
    from ..curvature import Curvature
    from ..priors import LaplacePrior

    out = {}
    for label, path in curvatures.items():
        if path == "l2sp":
            curv: Any = "l2sp"
        else:
            if not Path(path).is_file():
                raise FileNotFoundError(f"curvature file for {label!r} not found: {path}")
            curv = Curvature.load(path)
        out[label] = LaplacePrior(model, curv, 1.0, mode="full")
    return out


def predictions(priors: Mapping[str, nn.Module]) -> dict[str, float]:
    """``½·Σ vec(ΔW)ᵀ H vec(ΔW)`` per curvature for the weights the model holds now."""
    with torch.no_grad():
        return {label: float(p.penalty()) for label, p in priors.items()}


def load_weights_into(
    model: nn.Module, adapted_dir: str | os.PathLike, checkpoint: str | os.PathLike
) -> None:
    """Put an adapted folder's weights (LoRA merged) into ``model`` in place, keeping its priors valid."""
    from ..train.artifacts import load_adapted_model

    adapted = load_adapted_model(adapted_dir, checkpoint, modules=None)
    missing, unexpected = model.load_state_dict(adapted.state_dict(), strict=False)
    if unexpected or missing:
        raise ValueError(
            f"{adapted_dir}: the adapted model does not fit the base model "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )


def summarise(losses: Mapping[str, float]) -> dict[str, Any]:
    values = np.array(list(losses.values()), dtype=np.float64)
    return {"mean": float(values.mean()), "n": int(values.size), "per_utterance": dict(losses)}
