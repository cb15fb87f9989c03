"""Phoneme error rate (PER) from a CTC phoneme recogniser: the StyleTTS 2 text aligner's CTC head.

Word-level ASR cannot judge espeak-like synthetic speech, but a phoneme recogniser trained on the same
kind of audio can. Pipeline: audio -> 24 kHz StyleTTS 2 log-mel -> ``ASRCNN`` CTC logits -> greedy
decode (argmax, merge repeats, drop blank id 0) -> phone string, compared with the reference text's
phonemes (``tts_adapt.text.Phonemizer``) by edit distance.

Both sides are reduced to *phone symbols* before scoring: word spaces, punctuation and the stress marks
``ˈ ˌ`` are removed; every other code point (vowels, consonants, the length mark ``ː``, ``ᵻ`` ...) is one
unit, as it is one token for StyleTTS 2. So PER = edits / number of reference phone symbols.

The recogniser itself (official ``Utils/ASR`` weights or one trained with ``tts-adapt train-per``) is
:class:`tts_adapt.alignment.recognizer.CTCRecognizer`; for PER, train it on recordings that the model
under test never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..alignment.recognizer import STRESS_MARKS, CTCRecognizer
from ..text.symbols import PUNCTUATION
from .audio_io import AudioInput, load_wave
from .text_norm import edit_distance

_DROP = set(PUNCTUATION) | set(STRESS_MARKS) | {" "}


def phone_units(ipa: str) -> list[str]:
    """The units PER counts: the code points of ``ipa`` minus spaces, punctuation and stress marks."""
    return [c for c in ipa if c not in _DROP]


def phoneme_error_rate(reference_ipa: str, hypothesis_ipa: str) -> float:
    ref = phone_units(reference_ipa)
    if not ref:
        raise ValueError(f"reference has no phone symbols: {reference_ipa!r}")
    return edit_distance(ref, phone_units(hypothesis_ipa)) / len(ref)


class PhonemeRecognizer(CTCRecognizer):
    """The recogniser as a PER scorer: ``recognize(audios) -> IPA strings``, ``per(audio, reference_ipa)``."""

    def recognize(self, audios: Sequence[AudioInput]) -> list[str]:
        return [self.transcribe(load_wave(a, self.sample_rate)) for a in audios]

    def per(self, audio: AudioInput, reference_ipa: str) -> dict:
        hyp = self.recognize([audio])[0]
        return {"phonemes": hyp, "per": phoneme_error_rate(reference_ipa, hyp)}
