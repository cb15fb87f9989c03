"""Which modules run in training mode while the fine-tuning objective is computed (the official split).

The official ``train_finetune.py`` puts every module in eval mode, then the text aligner, text encoder,
prosody predictor, PL-BERT (and its projection) and the two waveform discriminators back in training
mode: dropout is active there and nowhere else (the decoder, style encoders and diffusion stay in eval
mode). The reference implementation's curvature pass runs inside that same loop, so its statistics are
taken with this dropout too.
"""

from __future__ import annotations

from torch import nn

TRAIN_MODE = ("text_aligner", "text_encoder", "predictor", "bert_encoder", "bert", "msd", "mpd")
ALIGNER_TOKEN_MASK = 0.1  # the official aligner's token masking (an augmentation, on in both modes)


def set_training_modes(model: nn.Module, dropout: bool = True) -> None:
    """The official train/eval split; with ``dropout=False`` every module runs deterministically (and
    the aligner's token masking is off)."""
    model.eval()
    if dropout:
        for name in TRAIN_MODE:
            module = getattr(model, name, None)
            if module is not None:
                module.train()
    aligner = getattr(model, "text_aligner", None)
    if aligner is not None and hasattr(aligner, "token_mask_prob"):
        aligner.token_mask_prob = ALIGNER_TOKEN_MASK if dropout else 0.0
