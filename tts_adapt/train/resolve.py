"""Settings of one adaptation run: a flag when given, else the fine-tuning config, else our default.

The official fine-tuning reads ``batch_size``, ``max_len``, the learning rates and the stage starts
(``diff_epoch``, ``joint_epoch``, in epochs) from ``Configs/config_ft.yml``, a fine-tuning config, not from
the config the checkpoint was trained with. So do we: training keys come from ``--train-config`` (by
default the shipped ``assets/finetune_config.yml``, the official ``config_ft.yml`` values), the model from
the checkpoint's ``config.yml``, whose own training keys (a pre-training config's batch 16 and ft_lr 1e-5)
never become fine-tuning settings; where they differ from what is used, the printed settings say so.
Command-line flags override the fine-tuning config only when given. Epochs become steps with the
official epoch length, ``utterances // batch`` (the official loader drops the last partial batch).
Every resolved value is printed with where it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig, from_official

#: The shipped fine-tuning config: the training keys of the official ``Configs/config_ft.yml``.
FINETUNE_CONFIG = Path(__file__).resolve().parents[1] / "assets" / "finetune_config.yml"

# TrainConfig fields a fine-tuning config can set, and the config key that sets each.
FROM_CONFIG = {
    "steps": "epochs",
    "batch_size": "batch_size",
    "max_len": "max_len",
    "lr": "optimizer_params.lr",
    "bert_lr": "optimizer_params.bert_lr",
    "ft_lr": "optimizer_params.ft_lr",
    "diff_start": "loss_params.diff_epoch",
    "joint_start": "loss_params.joint_epoch",
    "slm_min_len": "slmadv_params.min_len",
    "slm_max_len": "slmadv_params.max_len",
    "slmadv_params": "slmadv_params",
    "ood_min_length": "data_params.min_length",
    "estimate_sigma_data": "model_params.diffusion.dist.estimate_sigma_data",
}
EPOCH_FIELDS = ("steps", "diff_start", "joint_start")
# Training keys a checkpoint's own config.yml may hold; compared with the ones used, never read.
TRAINING_KEYS = (
    "epochs",
    "batch_size",
    "max_len",
    "optimizer_params.lr",
    "optimizer_params.bert_lr",
    "optimizer_params.ft_lr",
    "loss_params.diff_epoch",
    "loss_params.joint_epoch",
    *(
        f"slmadv_params.{k}"
        for k in ("min_len", "max_len", "batch_percentage", "iter", "thresh", "scale", "sig")
    ),
    "data_params.min_length",
    "data_params.OOD_data",
)
SHOWN = (
    "method",
    "steps",
    "batch_size",
    "batching",
    "frame_budget",
    "grad_accum",
    "max_len",
    "lr",
    "bert_lr",
    "ft_lr",
    "diff_start",
    "joint_start",
    "slm_min_len",
    "slm_max_len",
    "slmadv_params",
    "ood_min_length",
    "estimate_sigma_data",
    "f0",
    "amp",
    "seed",
    "curvature",
    "strength",
    "curvature_scaling",
    "no_slm",
    "ood_texts",
    "no_ood",
)
PRIOR_FIELDS = ("curvature", "strength", "curvature_scaling")  # shown only for a method with a prior
NEVER = "never"  # --joint-start never: no SLM-adversarial stage, whatever the fine-tuning config says


@dataclass
class Resolved:
    cfg: TrainConfig
    sources: dict[str, str] = field(default_factory=dict)  # field -> "flag" | "<label>: key" | "default"
    steps_per_epoch: int | None = None
    label: str = "fine-tuning config"
    config_path: str | None = None
    unused: list[str] = field(default_factory=list)  # "key value" the checkpoint's config.yml sets, not used
    ood_missing: str | None = None  # a listed OOD_data file that does not exist
    model_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # shown: name -> (value, source)


def _lookup(config: dict[str, Any] | None, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_train_config(path: str | Path | None) -> dict[str, Any]:
    """A fine-tuning config file (``None``: the shipped one) as a mapping."""
    import yaml

    path = Path(path) if path is not None else FINETUNE_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FileNotFoundError(f"--train-config {path} cannot be read ({e})") from e
    except yaml.YAMLError as e:
        raise ValueError(f"--train-config {path} is not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(
            f"--train-config {path}: expected a mapping of training keys, got {type(data).__name__}"
        )
    return data


def short_crop(model_config: dict[str, Any] | None) -> int:
    """The ``max_len`` below which a run is warned that its crops are short: the reference setup's
    (``RECOMMENDED_MAX_LEN``), or less for a model trained on shorter crops, as its own config records
    (``pretrain_max_len``: the shipped model's pre-training crop, 48 frames) or its own fine-tuning
    config sets (Kokoro's ``finetune.yml``: 100). A model is not warned about the crop it was made with."""
    from .config import RECOMMENDED_MAX_LEN

    crops = [RECOMMENDED_MAX_LEN]
    model_config = model_config or {}
    if isinstance(model_config.get("pretrain_max_len"), int):
        crops.append(model_config["pretrain_max_len"])
    if model_config.get("finetune_config"):
        from ..models.styletts2.config import resolve_path

        found = resolve_path(model_config["finetune_config"], model_config)
        own = _lookup(load_train_config(found), "max_len") if found is not None else None
        if isinstance(own, int):
            crops.append(own)
    return min(crops)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def unused_checkpoint_keys(
    checkpoint_config: dict[str, Any] | None, train_config: dict[str, Any]
) -> list[str]:
    """``"key value"`` for each training key the checkpoint's config sets to another value than the
    fine-tuning config (such keys are not used; listing them keeps that from being silent)."""
    out = []
    for key in TRAINING_KEYS:
        value = _lookup(checkpoint_config, key)
        if value is not None and not _same(value, _lookup(train_config, key)):
            out.append(f"{key} {value}")
    return out


def resolve_settings(
    config: dict[str, Any],
    flags: dict[str, Any],
    n_utterances: int,
    *,
    label: str = "fine-tuning config",
    config_path: str | None = None,
    checkpoint_config: dict[str, Any] | None = None,
) -> Resolved:
    """Build the run's :class:`TrainConfig`: ``flags`` (``None`` = not given) over the fine-tuning
    ``config`` over defaults. ``n_utterances`` sets the official epoch length for ``epochs``,
    ``diff_epoch`` and ``joint_epoch``; ``checkpoint_config`` is only compared, never read from.
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
    flags = dict(flags)
    never = flags.get("joint_start") == NEVER
    if never:
        flags["joint_start"] = None
    default = TrainConfig()
    batch = flags.get("batch_size") or _lookup(config, "batch_size") or default.batch_size
    accum = flags.get("grad_accum") or default.grad_accum
    if int(batch) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch}")
    spe = max(1, int(n_utterances) // (int(batch) * int(accum))) if n_utterances else None
    cfg = from_official(config, steps_per_epoch=spe, **flags)
    if never:
        cfg.joint_start = None
    if n_utterances and cfg.batching == "random" and int(n_utterances) < cfg.batch_size:
        raise ConfigError(
            f"the data holds {n_utterances} utterance(s), fewer than one batch of {cfg.batch_size}: the last "
            "partial batch is dropped (as by the official loader), so no batch would be left; lower "
            "--batch-size"
        )
    sources = {}
    for name in known:
        if flags.get(name) is not None or (name == "joint_start" and never):
            sources[name] = "flag"
        elif name in FROM_CONFIG and _lookup(config, FROM_CONFIG[name]) is not None:
            if name in EPOCH_FIELDS and spe is None:
                sources[name] = "default"
                continue
            how = f" x {spe} steps/epoch" if name in EPOCH_FIELDS else ""
            sources[name] = f"{label}: {FROM_CONFIG[name]}{how}"
        else:
            sources[name] = "default"
    unused = unused_checkpoint_keys(checkpoint_config, config) if checkpoint_config is not None else []
    return Resolved(cfg, sources, spe, label, config_path, unused)


def describe_settings(resolved: Resolved) -> str:
    """The resolved settings, one per line, each with its source."""
    cfg, lines = resolved.cfg, []
    for name in SHOWN:
        if not hasattr(cfg, name) or (name in PRIOR_FIELDS and not cfg.uses_prior):
            continue
        value = getattr(cfg, name)
        if name == "joint_start" and value is None:
            value = "never"
        lines.append(f"  {name:19s} {value!s:24s} ({resolved.sources.get(name, 'default')})")
    if resolved.steps_per_epoch:
        lines.append(f"  {'epoch length':19s} {resolved.steps_per_epoch!s:24s} (utterances // batch)")
    for name, (value, source) in resolved.model_keys.items():
        lines.append(f"  {name:19s} {value} ({source})")
    head = "settings"
    if resolved.config_path:
        head += f" ({resolved.label}: {resolved.config_path})"
    text = head + ":\n" + "\n".join(lines)
    if resolved.unused:
        text += (
            "\n  not used, from the checkpoint's config.yml (a fine-tuning run takes its training keys "
            "from --train-config): " + ", ".join(resolved.unused)
        )
    return text


def check_ood(cfg: TrainConfig, slm_found: str | None, missing: str | None = None) -> None:
    """Refuse an SLM-adversarial stage without out-of-distribution texts unless ``--no-ood`` says so.

    The official loader reads ``data_params.OOD_data`` and fails when it is missing; half of the
    stage's steps synthesise those texts. ``missing`` names a listed file that does not exist.
    """
    joint = cfg.joint_start is not None and cfg.joint_start < cfg.steps
    if not joint or cfg.no_slm or slm_found is None or cfg.ood_texts or cfg.no_ood:
        return
    why = f"{missing} does not exist" if missing else "none is given (--ood-texts, or data_params.OOD_data)"
    raise ConfigError(
        f"the SLM-adversarial stage (from step {cfg.joint_start}) synthesises out-of-distribution texts on "
        f"half of its steps, and {why}: pass --ood-texts FILE (the official Data/OOD_texts.txt format), "
        "or --no-ood to draw every text from the batch"
    )


def check_slm(cfg: TrainConfig, lambda_slm: float, slm_found: str | None) -> str:
    """Refuse to drop the WavLM terms silently; returns a one-line description of the SLM source.

    The official fine-tuning has the SLM feature-matching term (``lambda_slm``) from step 0 and the
    SLM-adversarial stage from ``joint_epoch``; both need WavLM. Without weights the run stops unless
    ``no_slm`` says that training without them is intended (like ``--f0`` for the pitch source).
    """
    joint = cfg.joint_start is not None and cfg.joint_start < cfg.steps
    if cfg.no_slm:
        return "off (--no-slm): no SLM feature loss" + (", no SLM-adversarial stage" if joint else "")
    if slm_found is None and (lambda_slm > 0 or joint):
        needs = []
        if lambda_slm > 0:
            needs.append(f"loss_params.lambda_slm = {lambda_slm:g}")
        if joint:
            needs.append(f"the SLM-adversarial stage from step {cfg.joint_start}")
        raise ConfigError(
            f"{' and '.join(needs)} need{'s' if len(needs) == 1 else ''} WavLM weights, and none were found "
            "(model_params.slm.model in "
            "the local Hugging Face cache, or --wavlm FOLDER). Download them, or pass --no-slm to train "
            "without the SLM terms"
        )
    if slm_found is None:
        return "not used (lambda_slm = 0 and no SLM-adversarial stage)"
    return f"WavLM {slm_found}"
