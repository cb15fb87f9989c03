"""The StyleTTS 2 training objectives, below both the trainer (``train``) and the curvature estimation
(``curvature``), which import them; nothing here imports either.

* :mod:`.finetune`: the second-stage (fine-tuning) objective, per utterance;
* :mod:`.spectral`, :mod:`.adversarial`, :mod:`.pitch`: its multi-resolution mel, adversarial and F0
  pieces; :mod:`.crops`: crop lengths and waveform crops; :mod:`.frames`: how a loss declares padded
  frames and per-utterance rows to curvature hooks.
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "FineTuneObjective": "finetune",
    "GeneratorPass": "finetune",
    "LossWeights": "finetune",
    "TERMS": "finetune",
    "decoder_crop_frames": "crops",
    "crop_waves": "crops",
    "frame_mask": "frames",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
