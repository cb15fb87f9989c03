"""Adaptation settings, read from CLI flags and the official config, and checked up front.

The official StyleTTS 2 fine-tuning has traps that waste a GPU day before anyone notices; they are
caught here, before a model is loaded: an SLM-adversarial batch share too small to hold the two clips
the step needs (so that stage silently never runs), diffusion starting after the joint stage (a crash
mid-run), decoder crops too short to train on, and one-utterance batches. The SLM clips are cut from
whole utterances, not from the decoder crop, so ``slmadv_params.min_len`` may exceed ``max_len``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

METHODS = ("full", "linear", "lora", "lora+prior", "full+prior", "linear+prior", "voice")
#: a voice-pack model's new voice: learned as an offset to a stock pack, or as one style for every length
VOICE_MODES = ("offset", "vector")
BATCHING = ("random", "length")
MIN_CROP_FRAMES = 80  # official: batches whose decoder crop is below 80 mel frames are skipped
RECOMMENDED_MAX_LEN = 200  # the reference adaptation setup; shorter crops degrade quality


class ConfigError(ValueError):
    """A setting that cannot work, named with the fix."""


@dataclass
class TrainConfig:
    method: str = "lora+prior"
    steps: int = 2000
    batch_size: int = 2
    batching: str = "random"  # "random": official (shuffled, last partial batch dropped); "length"
    frame_budget: int | None = None  # padded mel frames per length-grouped batch (batching "length")
    grad_accum: int = 1
    max_len: int = 200
    lr: float = 1e-4
    bert_lr: float = 1e-5
    ft_lr: float = 1e-4
    diff_start: int = 0
    joint_start: int | None = None
    slm_min_len: int = 400
    slm_max_len: int = 500
    slmadv_params: dict[str, Any] = field(default_factory=dict)  # the official slmadv_params
    no_slm: bool = False  # an explicit choice to train without the WavLM terms (lambda_slm, joint stage)
    ood_texts: str | None = None  # official OOD_data list for the SLM-adversarial stage
    ood_min_length: int = 50  # official data_params.min_length
    no_ood: bool = False  # an explicit choice to run the SLM-adversarial stage on in-domain texts only
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    lora_targets: list[str] | None = None
    lora_layer_types: tuple[str, ...] = ("linear",)
    curvature: str | None = None
    strength: float | dict[str, float] = 1e3
    prior_missing: str = "error"  # LoRA layers the curvature does not cover: "error" or "skip"
    curvature_any_weights: bool = False  # accept curvature estimated on other weights of this model
    curvature_scaling: str = "ours"  # "reference": the reference implementation's G and λ (no ½)
    seed: int = 0
    f0: str = "jdc"
    dropout: bool = True
    amp: str = "none"
    nan_patience: int = 5
    log_every: int = 10
    save_every: int = 250
    sample_every: int = 250
    keep_checkpoints: int = 2
    train_aligner: bool = True
    estimate_sigma_data: bool = True
    device: str = "cpu"
    # voice-pack models (Kokoro): the target speaker's new voice, learned under every method
    voice_name: str | None = None  # default: the target speaker's name
    voice_init: str = "nearest"  # a stock voice, or the one nearest the target (speaker similarity)
    voice_mode: str = "offset"
    voice_lr: float = 1e-2
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_prior(self) -> bool:
        return self.method.endswith("+prior")

    @property
    def base_method(self) -> str:
        """``lora``, ``full``, ``linear`` or ``voice`` (the voice alone: no weight of the model moves)."""
        return self.method.split("+")[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_layer_types"] = list(self.lora_layer_types)
        return d


def validate(
    cfg: TrainConfig, warn: bool = True, world: int = 1, short_crop: int = RECOMMENDED_MAX_LEN
) -> list[str]:
    from ..objective.pitch import F0_SOURCES

    """Raise :class:`ConfigError` for settings that cannot work; return (and log) warnings.

    ``world`` is the number of data-parallel processes: the SLM-adversarial step cuts its clips from
    each process's share of the batch.
    """
    if cfg.method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    if cfg.uses_prior and not cfg.curvature:
        raise ConfigError(
            f"method {cfg.method!r} needs a curvature file (--curvature, from 'tts-adapt curvature') "
            "or --curvature l2sp for the identity prior"
        )
    if cfg.curvature and not cfg.uses_prior:
        raise ConfigError(
            f"--curvature was given but method {cfg.method!r} has no prior; use '{cfg.method}+prior'"
        )
    if cfg.voice_mode not in VOICE_MODES:
        raise ConfigError(f"--voice-mode must be one of {', '.join(VOICE_MODES)}, got {cfg.voice_mode!r}")
    if not cfg.voice_lr > 0:
        raise ConfigError(f"--voice-lr must be positive, got {cfg.voice_lr}")
    if cfg.prior_missing not in ("error", "skip"):
        raise ConfigError(f"--prior-missing-layers must be 'error' or 'skip', got {cfg.prior_missing!r}")
    strengths = cfg.strength.values() if isinstance(cfg.strength, dict) else [cfg.strength]
    if any(not math.isfinite(s) or s < 0 for s in strengths):
        raise ConfigError(f"prior strength (lambda) must be finite and >= 0, got {cfg.strength}")
    for name in ("steps", "batch_size", "grad_accum", "lora_rank", "nan_patience", "log_every", "save_every"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.f0 not in F0_SOURCES:
        raise ConfigError(
            f"f0 must be 'jdc' (the pitch extractor) or a DSP tracker ({', '.join(F0_SOURCES[1:])}), "
            f"got {cfg.f0!r}"
        )
    if cfg.batching not in BATCHING:
        raise ConfigError(f"batching must be one of {', '.join(BATCHING)}, got {cfg.batching!r}")
    if cfg.frame_budget is not None and cfg.batching != "length":
        raise ConfigError(
            "--frame-budget packs length-grouped batches under a padded-frame budget: it needs "
            "--batching length (the official batches are random, --batching random)"
        )
    if cfg.frame_budget is not None and cfg.frame_budget < 1:
        raise ConfigError(f"frame_budget must be >= 1 padded mel frames, got {cfg.frame_budget}")
    if cfg.amp not in ("none", "bf16", "fp16"):
        raise ConfigError(f"amp must be 'none', 'bf16' or 'fp16', got {cfg.amp!r}")
    if cfg.max_len < MIN_CROP_FRAMES:
        raise ConfigError(
            f"max_len {cfg.max_len} frames is below the {MIN_CROP_FRAMES}-frame decoder crop the objective "
            f"needs: every batch would be skipped. Use at least {RECOMMENDED_MAX_LEN}."
        )
    warnings: list[str] = []
    if cfg.max_len < short_crop:  # the model's own crop where it was trained on shorter ones
        warnings.append(
            f"max_len {cfg.max_len} frames ({cfg.max_len * 0.0125:.2f} s) is short: StyleTTS 2 fine-tuned on "
            f"short crops loses quality; {short_crop}-400 is recommended"
        )
    if cfg.joint_start is not None and cfg.joint_start < cfg.steps:
        if cfg.diff_start > cfg.joint_start:
            raise ConfigError(
                f"diffusion starts at step {cfg.diff_start} but the joint SLM stage at {cfg.joint_start}: "
                "the joint stage needs the diffusion targets (the official script crashes here). "
                "Set diff_epoch <= joint_epoch."
            )
        if cfg.slm_max_len < cfg.slm_min_len:
            raise ConfigError(f"slmadv_params.max_len {cfg.slm_max_len} < min_len {cfg.slm_min_len}")
        share = float(cfg.slmadv_params.get("batch_percentage", 0.5))
        local = cfg.batch_size // max(world, 1)
        if share * local < 2:
            most = max(0, math.ceil(share * local)) if local else 0
            warnings.append(
                f"slmadv_params.batch_percentage {share} x local batch {local} (batch_size {cfg.batch_size} "
                f"over {world} process(es)) = {share * local:g} < 2: the SLM-adversarial step keeps at most "
                f"{most} clip(s) per process"
                + (" and needs 2, so it never runs" if most < 2 else "")
                + "; raise batch_size or batch_percentage"
            )
    if cfg.batch_size < 2:
        warnings.append(
            "batch_size 1: StyleTTS 2 fine-tuning is known to go NaN with one-utterance batches (the "
            "diffusion sigma_data estimate and the discriminators see one sample); use 2 or more"
        )
    if cfg.diff_start >= cfg.steps:
        warnings.append(
            f"diff_start {cfg.diff_start} >= steps {cfg.steps}: the style diffusion is never trained"
        )
    if warn:
        said = cfg.__dict__.setdefault("_warned", set())  # one command validates in several places
        for w in warnings:
            if w not in said:
                log.warning(w)
                said.add(w)
    return warnings


def from_official(
    config: dict[str, Any], steps_per_epoch: int | None = None, **overrides: Any
) -> TrainConfig:
    """Map the official ``config.yml`` training keys (epochs, batch_size, max_len, optimizer and SLM
    params, diff/joint epochs) onto a :class:`TrainConfig`; epochs become steps via ``steps_per_epoch``."""
    opt = config.get("optimizer_params") or {}
    loss = config.get("loss_params") or {}
    slm = config.get("slmadv_params") or {}
    dist = ((config.get("model_params") or {}).get("diffusion") or {}).get("dist") or {}
    kw: dict[str, Any] = {}
    for key, name in (("batch_size", "batch_size"), ("max_len", "max_len")):
        if key in config:
            kw[name] = int(config[key])
    for key in ("lr", "bert_lr", "ft_lr"):
        if key in opt:
            kw[key] = float(opt[key])
    if "min_len" in slm:
        kw["slm_min_len"] = int(slm["min_len"])
    if "max_len" in slm:
        kw["slm_max_len"] = int(slm["max_len"])
    if slm:
        kw["slmadv_params"] = dict(slm)
    data = config.get("data_params") or {}
    if "min_length" in data:
        kw["ood_min_length"] = int(data["min_length"])
    if "estimate_sigma_data" in dist:
        kw["estimate_sigma_data"] = bool(dist["estimate_sigma_data"])
    if steps_per_epoch:
        if "epochs" in config:
            kw["steps"] = int(config["epochs"]) * steps_per_epoch
        if "diff_epoch" in loss:
            kw["diff_start"] = int(loss["diff_epoch"]) * steps_per_epoch
        if "joint_epoch" in loss:
            kw["joint_start"] = int(loss["joint_epoch"]) * steps_per_epoch
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)
