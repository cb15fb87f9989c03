"""The Laplace prior on the adaptation shift (LoRA or full fine-tuning)."""

from .laplace import LaplacePrior

__all__ = ["LaplacePrior"]
