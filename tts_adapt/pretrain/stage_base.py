"""What a pre-training stage tells the run: which modules it trains, its objective, its loss on a batch
and its listenable sample. The run (:mod:`.runner`) does the rest the same way for every stage: data,
optimiser step, logging, checkpoints and resuming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..data import Batch

# the run (.runner.Pretrainer) hands itself to its stages; named here, not imported (it imports them)
Pretrainer = Any
Mean = Callable[[torch.Tensor], torch.Tensor]  # the global-batch mean of per-utterance values


class Stage:
    name: str = ""
    trained: tuple[str, ...] = ()  # modules in training mode (official train_first.py / train_second.py)
    optimised: tuple[str, ...] = ()  # modules in the optimiser (a frozen one may wait there for its turn)

    def start(self, run: Pretrainer) -> None:
        """Once, when the stage starts from nothing (not when it resumes)."""

    def lr_factor(self, run: Pretrainer, step: int) -> float | None:
        """The learning-rate factor at ``step`` (``None``: constant, nothing to set)."""
        return None

    def objective(self, run: Pretrainer) -> Any:
        raise NotImplementedError

    def losses(
        self, run: Pretrainer, objective: Any, batch: Batch, step: int, mean: Mean, disc_opt: Any
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, float]] | None:
        """``(per-utterance terms, per-utterance total, other logged values)`` for one batch, or ``None``
        for a batch that cannot be used."""
        raise NotImplementedError

    def sample(self, run: Pretrainer, item) -> np.ndarray | None:
        """A listenable check of the stage's weights (``None``: the stage has none)."""
        return None
