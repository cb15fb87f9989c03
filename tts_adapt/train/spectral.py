"""Moved to :mod:`tts_adapt.objective.spectral` (shared with the curvature estimation); re-exported here."""

from ..objective.spectral import *  # noqa: F403
from ..objective.spectral import __all__  # noqa: F401
