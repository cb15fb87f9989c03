"""Optimisers with the official fine-tuning's learning rates and momenta.

The official ``train_finetune.py`` builds one AdamW per module (``optimizers.py``: betas 0/0.99, weight
decay 1e-4, eps 1e-9) and wraps each in a ``OneCycleLR`` (``max_lr = lr``, ``pct_start = 0``,
``div_factor = final_div_factor = 1``) that it never steps. Construction alone still changes the groups:
the scheduler's initial step sets every rate to ``max_lr / div_factor = lr`` and, because
``cycle_momentum`` is on, sets β1 to the cosine-annealed momentum of step 0 of the descending phase,
``0.95 - 0.05 · (1 + cos(π / N))`` for ``N = epochs × steps per epoch`` total steps, that is ≈ 0.85.
Afterwards the script overrides three modules: PL-BERT at ``bert_lr`` (betas 0.9/0.99, weight decay
0.01), decoder and acoustic style encoder at ``ft_lr`` (betas 0/0.99). Every other module, the
discriminators included, keeps ``lr`` and β1 ≈ 0.85. Adam keeps per-parameter state, so one AdamW with
a parameter group per module is the same optimiser.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig

EPS = 1e-9
BASE_MOMENTUM, MAX_MOMENTUM = 0.85, 0.95  # OneCycleLR's defaults, which the official script keeps


def one_cycle_initial_beta1(total_steps: int) -> float:
    """β1 that an official, never-stepped ``OneCycleLR(pct_start=0)`` leaves after construction.

    With ``pct_start = 0`` the warm-up phase ends at step -1, so step 0 lies in the annealing phase at
    ``pct = 1 / total_steps``; momentum anneals (cosine) from the base to the max momentum.
    """
    pct = 1.0 / max(int(total_steps), 1)
    return MAX_MOMENTUM + (BASE_MOMENTUM - MAX_MOMENTUM) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def group_settings(module: str, cfg: TrainConfig) -> dict:
    """The official learning rate, betas and weight decay of one module's AdamW."""
    if module == "voices":  # a learned voice pack: its own rate, no decay (decay would pull it to zero)
        return {"lr": cfg.voice_lr, "betas": (0.9, 0.99), "weight_decay": 0.0}
    if module == "bert":
        return {"lr": cfg.bert_lr, "betas": (0.9, 0.99), "weight_decay": 0.01}
    if module in ("decoder", "style_encoder"):
        return {"lr": cfg.ft_lr, "betas": (0.0, 0.99), "weight_decay": 1e-4}
    return {"lr": cfg.lr, "betas": (one_cycle_initial_beta1(cfg.steps), 0.99), "weight_decay": 1e-4}


def build_optimizer(params: dict[str, list[nn.Parameter]], cfg: TrainConfig) -> torch.optim.AdamW | None:
    """One AdamW over the non-empty module groups (``None`` if nothing is trainable)."""
    groups = [{"params": ps, "name": name, **group_settings(name, cfg)} for name, ps in params.items() if ps]
    if not groups:
        return None
    return torch.optim.AdamW(groups, eps=EPS)
