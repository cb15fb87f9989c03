"""The phoneme recogniser and the monotonic paths it gives: one concept that pre-training (cached
durations), fine-tuning and curvature (the paths a base model's decoder learned on) and evaluation
(phoneme error rate) all use, so it sits below them and imports none of them.

* :mod:`.recognizer`: the CTC recogniser (official ``Utils/ASR`` weights or ``tts-adapt train-per``'s);
* :mod:`.paths`: monotonic paths of a batch from the recogniser or a model's text aligner;
* :mod:`.table`: every utterance's token durations, computed once and cached.
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "AlignmentTable": "table",
    "CTCRecognizer": "recognizer",
    "RecognizerPaths": "paths",
    "align_batch": "paths",
    "load_recognizer": "recognizer",
    "recognizer_paths_from_config": "paths",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
