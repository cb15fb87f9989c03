"""Curvature of the pre-training loss for the Laplace prior: L2-SP, diagonal (EWC), KFAC and EKFAC."""

from ..objective.frames import frame_mask
from .estimate import estimate
from .layers import LayerSpec, make_spec
from .store import METHODS, Curvature, fingerprint

__all__ = ["METHODS", "Curvature", "LayerSpec", "estimate", "fingerprint", "frame_mask", "make_spec"]
