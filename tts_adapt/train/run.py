"""One call from a checkpoint, a config and prepared data to an adapted-model folder."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.prepare import PreparedUtterance
from ..objective.finetune import LossWeights
from ..utils.logging import add_file_log
from .artifacts import MANIFEST, export_adapted
from .config import TrainConfig, validate
from .distributed import DistInfo, init_from_env
from .provenance import base_record, sha256_file
from .resolve import check_slm

log = logging.getLogger(__name__)


def run_adaptation(
    checkpoint: str | os.PathLike,
    config: str | os.PathLike | dict,
    items: Sequence[PreparedUtterance],
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    data_description: dict[str, Any] | None = None,
    sample_item: PreparedUtterance | None = None,
    slm=None,
    dist: DistInfo | None = None,
    progress: bool = True,
    hash_checkpoint: bool = True,
) -> Path:
    """Load the official checkpoint, train ``cfg.method`` on ``items``, write ``out``; returns ``out``.

    Re-running with the same ``out`` resumes from its newest checkpoint; a finished run is not redone.
    Without ``slm`` the run stops when the config needs WavLM, unless ``cfg.no_slm`` is set.
    """
    from ..models.styletts2 import load_official
    from .trainer import Trainer

    out = Path(out)
    validate(cfg, warn=False)  # errors before loading; the trainer warns, knowing the model's own crop
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        log.info("%s already holds a finished adaptation; nothing to do", out)
        return out
    dist = dist or init_from_env()
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        add_file_log(out / "train.log")
    model = load_official(checkpoint, config)
    weights = LossWeights.from_config(model.config.get("loss_params"))
    log.info("SLM: %s", check_slm(cfg, weights.slm, "given" if slm is not None else None))
    if cfg.no_slm:
        slm = None
    trainer = Trainer(
        model,
        cfg,
        items,
        out,
        weights=weights,
        sample_item=sample_item,
        dist=dist,
        slm=slm,
        progress=progress,
    )
    t0 = time.time()
    summary = trainer.run()
    if dist.main:
        manifest = {
            "method": cfg.method,
            "train_config": cfg.to_dict(),
            "base": {
                "checkpoint": str(Path(checkpoint).resolve()),
                **(base_record(checkpoint) if hash_checkpoint else {"sha256": None, "weights_sha256": None}),
                "config": str(Path(config).resolve()) if not isinstance(config, dict) else None,
            },
            "prior": {"curvature": cfg.curvature, "strength": cfg.strength} if cfg.uses_prior else None,
            "data": data_description or {"utterances": len(items)},
            "parameters": trainer.setup.counts,
            "summary": summary,
            "wall_seconds": time.time() - t0,
            "world_size": dist.world,
        }
        if cfg.curvature and cfg.curvature != "l2sp":
            manifest["prior"]["curvature_sha256"] = sha256_file(cfg.curvature)
        export_adapted(model, out, cfg.method, model.config, summary["sigma_data"], manifest)
        log.info("adapted model written to %s", out)
    return out
