"""The CTC phoneme recogniser: the StyleTTS 2 text aligner's architecture (``ASRCNN``), its CTC head read
alone. Training aligns with its paths, pre-training caches them, and evaluation scores phoneme error rate
with it, so it lives below all three.

Two sources of weights:

* the official StyleTTS 2 aligner ``Utils/ASR/epoch_00080.pth`` (``torch.load(...)['model']``, 178 tokens);
* one trained with ``tts-adapt train-per`` (a ``.safetensors`` file with its config in the metadata).

The recogniser runs one utterance at a time: its GroupNorm layers normalise over time, so zero padding
in a batch would change every padded utterance's output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..text.symbols import SYMBOLS

STRESS_MARKS = "ˈˌ"
BLANK_ID = 0
OFFICIAL_CONFIG = {
    "input_dim": 80,
    "hidden_dim": 256,
    "n_token": 178,
    "n_layers": 6,
    "token_embedding_dim": 512,
}
KIND = "tts-adapt/per-recognizer"


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
    """An untrained recogniser network of the given shape (its ``config`` as stored in a recogniser file)."""
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


class CTCRecognizer:
    """A CTC phoneme recogniser: ``logits(wave)`` and ``transcribe(wave) -> IPA``."""

    sample_rate = 24000

    def __init__(self, model: torch.nn.Module, source: str = "", device: str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.source = source
        self.device = device

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> CTCRecognizer:
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

    def transcribe(self, wave: np.ndarray) -> str:
        """The IPA the recogniser hears in a 24 kHz waveform (greedy CTC decoding)."""
        return ids_to_ipa(ctc_greedy_decode(self.logits(wave)))


def load_recognizer(path: str | Path, device: str = "cpu") -> nn.Module:
    """The recogniser network behind monotonic paths, checked against the symbol table."""
    model = CTCRecognizer.load(path, device=device).model
    classes = model.ctc_linear[-1].linear_layer.out_features
    if classes != len(SYMBOLS):
        raise ValueError(
            f"{path}: the recogniser has {classes} output classes, but the StyleTTS 2 symbol table has "
            f"{len(SYMBOLS)}; train one with `tts-adapt train-per`"
        )
    return model
