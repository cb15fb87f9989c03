"""Moved to :mod:`tts_adapt.objective.adversarial` (shared with the curvature); re-exported here."""

from ..objective.adversarial import *  # noqa: F403
from ..objective.adversarial import __all__  # noqa: F401
