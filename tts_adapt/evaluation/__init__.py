"""Evaluation: speaker similarity, WER/CER, PER, MCD-DTW, DNSMOS/UTMOS, the protocol and reports.

Modules (import what you need; heavy dependencies load lazily):

* ``similarity``: speaker-embedding cosine similarity (Resemblyzer default; WavLM-SV, ECAPA optional)
* ``asr`` + ``text_norm``: WER/CER with Whisper base from PyPI packages (``packaged_whisper``, offline,
  the default), PocketSphinx, or a user's own Whisper
* ``per`` + ``per_train``: phoneme error rate from a CTC phoneme recogniser (StyleTTS 2 aligner)
* ``mcd``: mel-cepstral distortion with DTW against the ground-truth recording
* ``quality``: DNSMOS and Distill-MOS (offline) and UTMOS (local weights)
* ``ground_truth`` + ``voice_sets``: the evaluators on named sets of recordings (the ceiling and floor)
* ``systems``: the ``Synthesizer`` protocol and system specs (``espeak:``, ``styletts2:``)
* ``testset`` + ``protocol``: the seeded target / held-out-speaker protocol with bootstrap intervals
* ``report`` + ``plots``: HTML and Markdown comparison reports
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

# imported on first use: naming an evaluator needs no numpy
_EXPORTS = {
    "AudioInput": "audio_io",
    "EmbeddingCache": "cache",
    "Estimate": "stats",
    "bootstrap_mean": "stats",
    "bootstrap_ratio": "stats",
    "cer": "text_norm",
    "load_wave": "audio_io",
    "normalize_text": "text_norm",
    "wer": "text_norm",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
