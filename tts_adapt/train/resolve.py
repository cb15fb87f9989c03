"""Settings of one adaptation run: a flag when given, else the official ``config.yml``, else our default.

The official fine-tuning reads ``batch_size``, ``max_len``, the learning rates and the stage starts
(``diff_epoch``, ``joint_epoch``, in epochs) from ``config.yml``. Command-line flags override those only
when given, so a config tuned for a voice is not silently replaced by our defaults. Epochs become steps
with the official epoch length, ``utterances // batch`` (the official loader drops the last partial
batch). Every resolved value is printed with where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .config import ConfigError, TrainConfig, from_official

# TrainConfig fields the official config.yml can set, and the config key that sets each.
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
    "ood_min_length": "data_params.min_length",
    "estimate_sigma_data": "model_params.diffusion.dist.estimate_sigma_data",
}
SHOWN = (
    "method",
    "steps",
    "batch_size",
    "grad_accum",
    "max_len",
    "lr",
    "bert_lr",
    "ft_lr",
    "diff_start",
    "joint_start",
    "slm_min_len",
    "slm_max_len",
    "f0",
    "amp",
    "seed",
    "curvature",
    "strength",
    "curvature_scaling",
    "no_slm",
    "ood_texts",
)


@dataclass
class Resolved:
    cfg: TrainConfig
    sources: dict[str, str] = field(default_factory=dict)  # field -> "flag" | "config: key" | "default"
    steps_per_epoch: int | None = None


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def resolve_settings(config: dict[str, Any], flags: dict[str, Any], n_utterances: int) -> Resolved:
    """Build the run's :class:`TrainConfig`: ``flags`` (``None`` = not given) over ``config`` over defaults.

    ``n_utterances`` sets the official epoch length for ``epochs``, ``diff_epoch`` and ``joint_epoch``.
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
    default = TrainConfig()
    batch = flags.get("batch_size") or _lookup(config, "batch_size") or default.batch_size
    accum = flags.get("grad_accum") or default.grad_accum
    if int(batch) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch}")
    spe = max(1, int(n_utterances) // (int(batch) * int(accum))) if n_utterances else None
    cfg = from_official(config, steps_per_epoch=spe, **flags)
    sources = {}
    for name in known:
        if flags.get(name) is not None:
            sources[name] = "flag"
        elif name in FROM_CONFIG and _lookup(config, FROM_CONFIG[name]) is not None:
            if name in ("steps", "diff_start", "joint_start") and spe is None:
                sources[name] = "default"
                continue
            how = f" x {spe} steps/epoch" if name in ("steps", "diff_start", "joint_start") else ""
            sources[name] = f"config: {FROM_CONFIG[name]}{how}"
        else:
            sources[name] = "default"
    return Resolved(cfg, sources, spe)


def describe_settings(resolved: Resolved) -> str:
    """The resolved settings, one per line, each with its source."""
    cfg, lines = resolved.cfg, []
    for name in SHOWN:
        if not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        lines.append(f"  {name:18s} {value!s:24s} ({resolved.sources.get(name, 'default')})")
    if resolved.steps_per_epoch:
        lines.append(f"  {'epoch length':18s} {resolved.steps_per_epoch!s:24s} (utterances // batch)")
    return "settings:\n" + "\n".join(lines)


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
            f"{' and '.join(needs)} need WavLM weights, and none were found (model_params.slm.model in "
            "the local Hugging Face cache, or --wavlm FOLDER). Download them, or pass --no-slm to train "
            "without the SLM terms"
        )
    if slm_found is None:
        return "not used (lambda_slm = 0 and no SLM-adversarial stage)"
    return f"WavLM {slm_found}"
