"""The pre-training objective for the held-out loss, imported in exactly one place.

The Laplace approximation says ``L(θ₀ + Δ) − L(θ₀) ≈ ½·vec(Δ)ᵀ H vec(Δ)`` where ``H`` is the curvature
of the *same* per-utterance loss that ``tts-adapt curvature`` estimated. So the held-out loss uses the
curvature's objective by name (``styletts2`` unless the curvature files say otherwise); if the
objective moves to another module, only the import below changes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

DEFAULT_OBJECTIVE = "styletts2"


def pretraining_loss_fn(
    name: str = DEFAULT_OBJECTIVE, crop_frames: int = 300
) -> Callable[[nn.Module, object], torch.Tensor]:
    """``loss_fn(model, batch) -> Tensor[B]``: the per-utterance pre-training loss named ``name``."""
    from ..curvature.objectives import get_objective

    return get_objective(name, max_len=crop_frames)
