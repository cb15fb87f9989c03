"""The settings behind a pre-training run's weights, as a short hash: a resumed or finished stage must
have been trained with the settings asked for now.

A stage's step count is not among them: the learning rate is constant (as officially), or, with a
first-stage decay, a function of the step alone, so asking for more steps later continues a finished
stage exactly as if they had been asked for at the start. A decay enters the first stage's fingerprint
only for checkpoints past its start, so a decay may be added after the last checkpoint; so does
adv_start (adversarial terms may be added when extending a finished reconstruction stage).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ..data.prepare import PreparedUtterance
from ..train.provenance import sha256_file
from .config import PretrainConfig

# Settings that shape each stage's result; a resumed or completed stage must have been run with them.
STAGE_SETTINGS = {
    "run": ("seed", "f0", "alignment", "betas", "weight_decay", "grad_clip"),
    "aligner": ("aligner_lr", "batch_size"),
    "first": ("tma_start", "adv_start", "max_len", "lr", "batch_size"),
    "second": ("diff_start", "second_decoder", "second_max_len", "lr", "bert_lr", "batch_size"),
}


def decay_applies(cfg: PretrainConfig, stage: str, step: int | None) -> bool:
    """Whether the first-stage decay shaped the weights after ``step`` steps."""
    return stage == "first" and cfg.lr_decay is not None and step is not None and step > cfg.lr_decay[0]


def fingerprint(
    cfg: PretrainConfig,
    items: Sequence[PreparedUtterance],
    model_config: dict,
    stage: str = "run",
    step: int | None = None,
) -> str:
    settings = cfg.to_dict()
    chosen = {k: settings[k] for k in STAGE_SETTINGS[stage]}
    if stage == "first" and not (cfg.adv_start is not None and step is not None and step > cfg.adv_start):
        chosen["adv_start"] = None  # no adversarial step shaped these weights yet
    if decay_applies(cfg, stage, step):
        chosen["lr_decay"] = settings["lr_decay"]
        chosen["lr_final"] = cfg.final_lr
    if stage == "first" and cfg.style_source != "segment":
        chosen["style_source"] = cfg.style_source  # the default keeps earlier runs' fingerprints
    if stage == "first" and cfg.first_train_only is not None:
        chosen["first_train_only"] = list(cfg.first_train_only)
    if stage == "run" and cfg.init is not None:
        chosen["init"] = sha256_file(cfg.init)[:16]  # the starting weights shape every stage
    if stage == "first" and cfg.adv_warmup and step is not None and step > (cfg.adv_start or 0):
        chosen["adv_warmup"] = cfg.adv_warmup
    if stage == "first" and cfg.disc_lr is not None and step is not None and step > (cfg.adv_start or 0):
        chosen["disc_lr"] = cfg.disc_lr
    if stage == "run" and cfg.recognizer is not None:
        # the recogniser's weights shape every path (runs without one keep their earlier fingerprint)
        chosen["recognizer"] = sha256_file(cfg.recognizer)[:16]
    blob = json.dumps(
        {
            "settings": chosen,
            "data": [it.id for it in items],
            "model": {k: v for k, v in model_config.items() if not k.startswith("_")},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
