"""Optimisers with the official fine-tuning's learning rates.

The official script builds one AdamW per module (betas 0/0.99, weight decay 1e-4, eps 1e-9) and a
OneCycle scheduler it never steps, so every rate is constant: PL-BERT at ``bert_lr`` (betas 0.9/0.99,
weight decay 0.01), decoder and acoustic style encoder at ``ft_lr``, everything else (including the
discriminators) at the scheduler's initial rate, ``2 * lr``. Adam keeps per-parameter state, so one
AdamW with a parameter group per module is the same optimiser.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig

EPS = 1e-9


def group_settings(module: str, cfg: TrainConfig) -> dict:
    if module == "bert":
        return {"lr": cfg.bert_lr, "betas": (0.9, 0.99), "weight_decay": 0.01}
    if module in ("decoder", "style_encoder"):
        return {"lr": cfg.ft_lr, "betas": (0.0, 0.99), "weight_decay": 1e-4}
    return {"lr": 2 * cfg.lr, "betas": (0.0, 0.99), "weight_decay": 1e-4}


def build_optimizer(params: dict[str, list[nn.Parameter]], cfg: TrainConfig) -> torch.optim.AdamW | None:
    """One AdamW over the non-empty module groups (``None`` if nothing is trainable)."""
    groups = [{"params": ps, "name": name, **group_settings(name, cfg)} for name, ps in params.items() if ps]
    if not groups:
        return None
    return torch.optim.AdamW(groups, eps=EPS)
