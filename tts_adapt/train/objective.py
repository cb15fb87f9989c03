"""Moved to :mod:`tts_adapt.objective.finetune` (shared with the curvature estimation); re-exported here."""

from ..objective.finetune import *  # noqa: F403
from ..objective.finetune import __all__  # noqa: F401
