"""The speech-language-model (WavLM) terms of StyleTTS 2 fine-tuning.

The official recipe compares WavLM hidden states of real and generated audio (feature matching,
``lambda_slm``) and trains the ``wd`` head on them. WavLM weights cannot be fetched at training time
everywhere, so the terms are on only when the weights are found locally (a folder, or the Hugging Face
cache) and off with one clear log message otherwise.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torchaudio
from torch import nn

log = logging.getLogger(__name__)


class SpeechLM(nn.Module):
    """A frozen WavLM at ``slm_sr`` (16 kHz) over 24 kHz audio; exposes hidden states and the losses."""

    def __init__(self, wavlm: nn.Module, sample_rate: int = 24000, slm_sr: int = 16000) -> None:
        super().__init__()
        self.wavlm = wavlm.eval()
        self.wavlm.requires_grad_(False)
        self.sample_rate = sample_rate
        self.slm_sr = slm_sr

    @classmethod
    def load(
        cls, source: str | os.PathLike, slm_cfg: dict[str, Any] | None = None, local_only: bool = True
    ) -> SpeechLM:
        """WavLM from a folder or hub id; ``local_only`` never touches the network."""
        from transformers import WavLMModel

        try:
            model = WavLMModel.from_pretrained(str(source), local_files_only=local_only)
        except Exception as e:
            raise FileNotFoundError(
                f"WavLM weights {source!r} are not available locally ({type(e).__name__}); download them "
                f"with 'huggingface-cli download {source}' or pass a folder with --wavlm"
            ) from e
        sr = int((slm_cfg or {}).get("sr", 16000))
        return cls(model, slm_sr=sr)

    @classmethod
    def try_load(cls, slm_cfg: dict[str, Any]) -> SpeechLM | None:
        name = slm_cfg.get("model", "microsoft/wavlm-base-plus")
        try:
            return cls.load(name, slm_cfg)
        except FileNotFoundError as e:
            log.info("SLM losses off: %s", e)
            return None

    def hidden_states(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 1, S]`` or ``[B, S]`` 24 kHz audio -> per-layer ``[B, frames, hidden]``."""
        x = wave.reshape(wave.shape[0], -1)
        x = torchaudio.functional.resample(x, self.sample_rate, self.slm_sr)
        out = self.wavlm(input_values=x, output_hidden_states=True)
        return list(out.hidden_states)

    def feature_loss(self, real: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """Per-utterance ``sum_layers mean |h(real) - h(generated)|`` (real side without gradient)."""
        with torch.no_grad():
            real_h = self.hidden_states(real)
        fake_h = self.hidden_states(generated)
        return sum((r - g).abs().flatten(1).mean(-1) for r, g in zip(real_h, fake_h))
