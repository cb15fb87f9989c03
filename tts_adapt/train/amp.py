"""fp16 loss scaling for the trainer: ``torch.amp.GradScaler`` with the three things a loop must get right.

1. A skipped update (non-finite loss or gradients) still backs the scale off; otherwise an overflowing
   scale stays too large, every following step overflows too, and the run ends in NaN errors.
2. Whoever reads gradient values (the SLM stage's gradient-norm threshold) unscales them first.
3. The scaler's state (scale, growth tracker) is saved with the checkpoint, so a resumed run continues
   with the same scale as an uninterrupted one.
4. The scale changes only between steps, never between the micro-batches of one (``--grad-accum``).
With ``amp`` other than ``fp16`` every method is the identity.
"""

from __future__ import annotations

from typing import Any

import torch


class LossScaling:
    def __init__(self, amp: str, device: torch.device) -> None:
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    @property
    def enabled(self) -> bool:
        return self.scaler is not None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler else loss

    def unscale(self, opt: torch.optim.Optimizer) -> None:
        """Divide ``opt``'s gradients by the scale (once per update) before anyone reads them."""
        if self.scaler:
            self.scaler.unscale_(opt)

    def step(self, opt: torch.optim.Optimizer, update: bool = True) -> None:
        """Step ``opt`` (skipped by the scaler if its gradients overflowed) and, unless ``update`` is
        False, update the scale. The discriminator steps before the last generator micro-batch's
        backward: its update waits for the generator's, so that every micro-batch of a step is scaled
        alike (one scale update per step covers both optimisers)."""
        if self.scaler:
            self.scaler.step(opt)
            if update:
                self.scaler.update()
        else:
            opt.step()

    def skip(self) -> None:
        """An update was skipped: back the scale off as the scaler does on overflow."""
        if self.scaler and self.scaler._scale is not None:
            self.scaler.update(new_scale=self.scaler.get_scale() * self.scaler.get_backoff_factor())
            if self.scaler._growth_tracker is not None:  # an overflow restarts the growth count
                self.scaler._growth_tracker.zero_()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
