"""Pre-training settings: three stages, each a number of optimiser steps.

The official recipe is ``train_first.py`` (reconstruction; the aligner and pitch extractor come
pre-trained) then ``train_second.py`` (durations, prosody, style diffusion, joint adversarial). Training
from nothing adds a stage in front, the aligner's own CTC + s2s training, and replaces the pitch
extractor with a DSP F0 tracker computed once per utterance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..objective.f0_sources import TRACKERS

STAGES = ("aligner", "first", "second")
# first-stage style: another segment of the utterance (official) or another utterance of the voice;
# the objective (tts_adapt.objective.first_stage.STYLE_SOURCES) checks the same names
STYLE_SOURCES = ("segment", "reference")


class PretrainConfigError(ValueError):
    """A pre-training setting that cannot work, named with the fix."""


@dataclass
class PretrainConfig:
    aligner_steps: int = 400
    first_steps: int = 2000
    second_steps: int = 1000
    tma_start: int = 200  # first-stage step from which the aligner trains through the reconstruction
    adv_start: int | None = None  # first-stage step from which MPD/MSD train (None: reconstruction only)
    # first-stage steps after adv_start in which only the discriminators learn (the generator keeps its
    # reconstruction losses), so that discriminators starting from nothing catch up before they teach
    adv_warmup: int = 0
    # MPD/MSD learning rate (None: lr, as officially); small discriminators next to a trained generator
    # may need a faster one to separate real from generated audio at all
    disc_lr: float | None = None
    diff_start: int = 0  # second-stage step from which the style diffusion trains
    second_decoder: bool = False  # train the decoder on predicted prosody in the second stage too
    # first-stage parameters to train, by qualified-name prefix (e.g. "decoder.generator" to fit a new
    # generator under a trained model without moving the rest); None: every first-stage module
    first_train_only: tuple[str, ...] | None = None
    batch_size: int = 8
    max_len: int = 48  # first-stage decoder crop in mel frames (12.5 ms each)
    second_max_len: int = 120  # second-stage prosody crop (the style encoders see it: >= 80 frames)
    lr: float = 2e-4
    aligner_lr: float = 5e-4
    bert_lr: float = 1e-4
    # first-stage steps [start, end) over which lr falls (half cosine) to lr_final; None: constant, as
    # officially. A pure function of the step, so a finished stage can still be extended exactly.
    lr_decay: tuple[int, int] | None = None
    lr_final: float | None = None  # None: lr / 10
    betas: tuple[float, float] = (0.85, 0.99)
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    f0: str = "yin"
    alignment: str = "attention"
    recognizer: str | None = None  # CTC phoneme recogniser for alignment="recognizer" (train-per output)
    style_source: str = "segment"  # first-stage style: another segment (official) or another utterance
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    sample_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"
    # weights to start from instead of random ones (a pre-trained model to continue); modules it lacks
    # keep their seeded initialisation
    init: str | None = None

    def stage_steps(self, stage: str) -> int:
        return {"aligner": self.aligner_steps, "first": self.first_steps, "second": self.second_steps}[stage]

    @property
    def discriminator_lr(self) -> float:
        """The MPD/MSD base rate: ``disc_lr``, or the generator's ``lr`` as officially."""
        return self.disc_lr if self.disc_lr is not None else self.lr

    @property
    def final_lr(self) -> float:
        """The first-stage rate at the end of ``lr_decay`` (``lr_final``, or ``lr / 10``)."""
        return self.lr_final if self.lr_final is not None else self.lr / 10

    def first_lr_factor(self, step: int) -> float:
        """Multiplier of every first-stage learning rate at 0-based ``step``: 1 before the decay, then
        half a cosine down to ``lr_final / lr`` at step ``end - 1``, and that value after it."""
        if self.lr_decay is None:
            return 1.0
        start, end = self.lr_decay
        if step < start:
            return 1.0
        final = self.final_lr / self.lr
        t = min((step - start + 1) / (end - start), 1.0)
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        if self.lr_decay is not None:
            d["lr_decay"] = list(self.lr_decay)
        return d


def validate(cfg: PretrainConfig) -> None:
    for name in ("aligner_steps", "first_steps", "second_steps", "tma_start", "diff_start"):
        if getattr(cfg, name) < 0:
            raise PretrainConfigError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("batch_size", "log_every", "save_every", "sample_every", "keep_checkpoints"):
        if getattr(cfg, name) < 1:
            raise PretrainConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise PretrainConfigError("batch_size must be >= 2 (the diffusion's sigma_data estimate needs two)")
    if cfg.max_len < 8:
        raise PretrainConfigError(f"max_len {cfg.max_len} mel frames is too short a decoder crop; use >= 24")
    if cfg.second_max_len < 80:
        raise PretrainConfigError(
            f"second_max_len {cfg.second_max_len} is below the 80-frame crop the second stage's style "
            "encoders need (official); use >= 80"
        )
    if cfg.f0 not in TRACKERS:
        raise PretrainConfigError(f"f0 must be one of {', '.join(TRACKERS)}, got {cfg.f0!r}")
    if cfg.alignment not in ("attention", "ctc", "recognizer"):
        raise PretrainConfigError(
            f"alignment must be 'attention', 'ctc' or 'recognizer', got {cfg.alignment!r}"
        )
    if (cfg.alignment == "recognizer") != (cfg.recognizer is not None):
        raise PretrainConfigError(
            "alignment 'recognizer' and a recognizer file go together: pass --alignment recognizer "
            "--recognizer FILE (a `tts-adapt train-per` recogniser or the official ASR .pth)"
        )
    if cfg.style_source not in STYLE_SOURCES:
        raise PretrainConfigError(
            f"style_source must be one of {', '.join(STYLE_SOURCES)}, got {cfg.style_source!r}"
        )
    if cfg.adv_start is not None and cfg.adv_start < 0:
        raise PretrainConfigError(f"adv_start must be >= 0, got {cfg.adv_start}")
    if cfg.adv_warmup < 0:
        raise PretrainConfigError(f"adv_warmup must be >= 0, got {cfg.adv_warmup}")
    if cfg.disc_lr is not None and not cfg.disc_lr > 0:
        raise PretrainConfigError(f"disc_lr must be > 0, got {cfg.disc_lr}")
    if cfg.disc_lr is not None and cfg.adv_start is None:
        raise PretrainConfigError("disc_lr needs adversarial training: pass --adv-start STEP with --disc-lr")
    if cfg.adv_warmup and cfg.adv_start is None:
        raise PretrainConfigError(
            "adv_warmup needs adversarial training: pass --adv-start STEP with --adv-warmup"
        )
    if cfg.first_train_only is not None:
        from tts_adapt.models.styletts2.model import MODULE_NAMES

        first = ("text_encoder", "style_encoder", "decoder", "text_aligner")
        for prefix in cfg.first_train_only:
            if prefix.split(".")[0] not in first:
                raise PretrainConfigError(
                    f"first_train_only {prefix!r} must start with a first-stage module "
                    f"({', '.join(first)}); the model's modules are {', '.join(MODULE_NAMES)}"
                )
    if cfg.lr_decay is not None:
        start, end = cfg.lr_decay
        if not 0 <= start < end:
            raise PretrainConfigError(
                f"lr_decay {start}:{end} must be START:END first-stage steps with 0 <= START < END"
            )
    if cfg.lr_final is not None and not 0 < cfg.lr_final <= cfg.lr:
        raise PretrainConfigError(f"lr_final {cfg.lr_final} must be in (0, lr = {cfg.lr}]")
    if not (0 <= cfg.betas[0] < 1 and 0 <= cfg.betas[1] < 1):
        raise PretrainConfigError(f"betas must be in [0, 1), got {cfg.betas}")
