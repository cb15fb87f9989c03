"""Moved to :mod:`tts_adapt.objective.pitch` (shared with the curvature estimation); re-exported here."""

from ..objective.pitch import *  # noqa: F403
from ..objective.pitch import __all__  # noqa: F401
