"""Phoneme error rate (PER) from a CTC phoneme recogniser: the StyleTTS 2 text aligner's CTC head.

Word-level ASR cannot judge espeak-like synthetic speech, but a phoneme recogniser trained on the same
kind of audio can. Pipeline: audio -> 24 kHz StyleTTS 2 log-mel -> ``ASRCNN`` CTC logits -> greedy
decode (argmax, merge repeats, drop blank id 0) -> phone string, compared with the reference text's
phonemes (``tts_adapt.text.Phonemizer``) by edit distance.

Both sides are reduced to *phone symbols* before scoring: word spaces, punctuation and the stress marks
``ˈ ˌ`` are removed; every other code point (vowels, consonants, the length mark ``ː``, ``ᵻ`` ...) is one
unit, as it is one token for StyleTTS 2. So PER = edits / number of reference phone symbols.

Recognisers:

* the official StyleTTS 2 aligner ``Utils/ASR/epoch_00080.pth`` (``torch.load(...)['model']``, 178 tokens);
* one trained with ``tts-adapt train-per`` on an evaluation corpus (a ``.safetensors`` file with its
  config in the metadata). Train it on recordings that the model under test never saw.

The recogniser runs one utterance at a time: its GroupNorm layers normalise over time, so zero padding
in a batch would change every padded utterance's output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..text.symbols import PUNCTUATION, SYMBOLS
from .audio_io import AudioInput, load_wave
from .text_norm import edit_distance

STRESS_MARKS = "ˈˌ"
_DROP = set(PUNCTUATION) | set(STRESS_MARKS) | {" "}
BLANK_ID = 0
OFFICIAL_CONFIG = {
    "input_dim": 80,
    "hidden_dim": 256,
    "n_token": 178,
    "n_layers": 6,
    "token_embedding_dim": 512,
}
KIND = "tts-adapt/per-recognizer"


def phone_units(ipa: str) -> list[str]:
    """The units PER counts: the code points of ``ipa`` minus spaces, punctuation and stress marks."""
    return [c for c in ipa if c not in _DROP]


def phoneme_error_rate(reference_ipa: str, hypothesis_ipa: str) -> float:
    ref = phone_units(reference_ipa)
    if not ref:
        raise ValueError(f"reference has no phone symbols: {reference_ipa!r}")
    return edit_distance(ref, phone_units(hypothesis_ipa)) / len(ref)


def ctc_greedy_decode(logits: torch.Tensor, blank: int = BLANK_ID) -> list[int]:
    """Best path of ``[T, n_token]`` logits: argmax per frame, merge repeats, drop blanks."""
    best = logits.argmax(-1).tolist()
    out, prev = [], None
    for t in best:
        if t != prev and t != blank:
            out.append(t)
        prev = t
    return out


def ids_to_ipa(ids: Sequence[int]) -> str:
    return "".join(SYMBOLS[i] for i in ids if 0 <= i < len(SYMBOLS))


def build_aligner(config: dict) -> torch.nn.Module:
    from ..models.styletts2.aligner import ASRCNN

    model = ASRCNN(
        input_dim=int(config.get("input_dim", 80)),
        hidden_dim=int(config["hidden_dim"]),
        n_token=int(config.get("n_token", len(SYMBOLS))),
        n_layers=int(config["n_layers"]),
        token_embedding_dim=int(config.get("token_embedding_dim", 256)),
        token_mask_prob=0.0,
    )
    return model


class PhonemeRecognizer:
    """A CTC phoneme recogniser; ``recognize(audios) -> IPA strings``, ``per(audio, reference_ipa)``."""

    sample_rate = 24000

    def __init__(self, model: torch.nn.Module, source: str = "", device: str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.source = source
        self.device = device

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> PhonemeRecognizer:
        """Official ``.pth`` aligner weights or a ``tts-adapt train-per`` ``.safetensors`` recogniser."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"phoneme recogniser not found: {path} (official StyleTTS 2 Utils/ASR/epoch_00080.pth, "
                "or train "
                "one with `tts-adapt train-per`)"
            )
        if path.suffix == ".safetensors":
            from ..utils.io import load_tensors

            tensors, meta = load_tensors(path)
            if meta.get("kind") != KIND or "config" not in meta:
                raise ValueError(
                    f"{path} is not a tts-adapt phoneme recogniser (metadata kind={meta.get('kind')!r})"
                )
            model = build_aligner(meta["config"])
            model.load_state_dict(tensors, strict=True)
            return cls(model, str(path), device)
        from ..utils.io import safe_torch_load

        ckpt = safe_torch_load(path)
        state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict) or "ctc_linear.2.linear_layer.weight" not in state:
            raise ValueError(
                f"{path} does not hold an ASRCNN state dict under 'model' (official Utils/ASR format)"
            )
        state = {k.removeprefix("module."): v for k, v in state.items()}
        config = dict(OFFICIAL_CONFIG)
        config["n_token"] = int(state["ctc_linear.2.linear_layer.weight"].shape[0])
        config["hidden_dim"] = int(state["init_cnn.conv.weight"].shape[0])
        config["token_embedding_dim"] = int(state["asr_s2s.embedding.weight"].shape[1])
        config["n_layers"] = len({k.split(".")[1] for k in state if k.startswith("cnns.")})
        model = build_aligner(config)
        model.load_state_dict(state, strict=True)
        return cls(model, str(path), device)

    def logits(self, wave: np.ndarray) -> torch.Tensor:
        """``[T/2, n_token]`` CTC logits of a 24 kHz waveform."""
        from ..audio import log_mel

        mel = log_mel(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))).to(self.device)
        with torch.inference_mode():
            return self.model(mel)[0].float().cpu()

    def recognize(self, audios: Sequence[AudioInput]) -> list[str]:
        return [ids_to_ipa(ctc_greedy_decode(self.logits(load_wave(a, self.sample_rate)))) for a in audios]

    def per(self, audio: AudioInput, reference_ipa: str) -> dict:
        hyp = self.recognize([audio])[0]
        return {"phonemes": hyp, "per": phoneme_error_rate(reference_ipa, hyp)}
