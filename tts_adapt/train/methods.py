"""What each adaptation method trains, and the prior that goes with it.

* ``full``: every generator module (the paper's "full fine-tuning" baseline).
* ``linear``: only the ``nn.Linear`` layers of the paper's target modules (its "linear" baseline).
* ``lora``: LoRA adapters on the paper's targets (or ``lora_targets``), base weights frozen.
* ``*+prior``: the same plus the Laplace prior ``λ/2 · vec(ΔW)ᵀ H vec(ΔW)`` centred on the pre-trained
  weights, with ``H`` from ``tts-adapt curvature`` (or the identity, ``l2sp``).
* ``voice`` (voice-pack models): only the new voice; no weight moves, so nothing is forgotten by
  construction. Under every method a voice-pack model learns its target's voice (``model.voices``).

As in the reference experiment, the discriminators (``mpd``, ``msd``, ``wd``) and the text aligner are
trained in full under every method: they only shape training signals and are not used to synthesise.
The pitch extractor stays frozen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..adapters import apply_lora, count_parameters, default_targets, named_layers
from ..models.styletts2.model import INFERENCE_MODULES
from .config import TrainConfig

log = logging.getLogger(__name__)

GENERATOR_MODULES = INFERENCE_MODULES  # the modules an adaptation may change
DISCRIMINATORS = ("mpd", "msd", "wd")


def generator_modules(model: nn.Module) -> tuple[str, ...]:
    """The synthesis modules ``model`` has (all of :data:`GENERATOR_MODULES` for StyleTTS 2)."""
    names = getattr(model, "module_names", GENERATOR_MODULES)
    return tuple(n for n in GENERATOR_MODULES if n in names)


def discriminators(model: nn.Module) -> tuple[str, ...]:
    names = getattr(model, "module_names", DISCRIMINATORS)
    return tuple(n for n in DISCRIMINATORS if n in names)


@dataclass
class MethodSetup:
    method: str
    generator_params: dict[str, list[nn.Parameter]]
    discriminator_params: dict[str, list[nn.Parameter]]
    prior: nn.Module | None = None
    counts: dict[str, Any] = field(default_factory=dict)


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def build_prior(model: nn.Module, cfg: TrainConfig, mode: str) -> nn.Module:
    """One :class:`~tts_adapt.priors.LaplacePrior`, or a per-component set when λ is a dict."""
    from ..curvature import Curvature
    from ..priors import LaplacePrior
    from ..priors.scaling import apply_scaling

    curvature = "l2sp" if cfg.curvature == "l2sp" else Curvature.load(cfg.curvature)
    curvature, factor = apply_scaling(curvature, cfg.curvature_scaling)
    options = {"missing": cfg.prior_missing, "check_weights": not cfg.curvature_any_weights}
    if not isinstance(cfg.strength, dict):
        return LaplacePrior(model, curvature, factor * float(cfg.strength), mode=mode, **options)
    strengths = {k: factor * float(v) for k, v in cfg.strength.items()}
    return ComponentPriors(model, curvature, strengths, mode, **options)


class ComponentPriors(nn.Module):
    """Per-component strengths: ``{"decoder": 1e4, "default": 1e3}`` (``default`` covers the rest).

    Implemented as one prior with unit strength per layer group, summed with its λ.
    """

    def __init__(
        self, model: nn.Module, curvature, strengths: dict[str, float], mode: str, **options: Any
    ) -> None:
        super().__init__()
        from ..priors import LaplacePrior

        self.prior = LaplacePrior(model, curvature, 1.0, mode=mode, **options)
        default = float(strengths.get("default", 0.0))
        unknown = sorted(set(strengths) - set(GENERATOR_MODULES) - {"default"})
        if unknown:
            raise ValueError(f"per-component lambda names unknown component(s): {', '.join(unknown)}")
        self.weights = {n: float(strengths.get(n.split(".")[0], default)) for n in self.prior.layer_names}
        self.strength = strengths

    def penalty(self):
        total = None
        for name, q in zip(self.prior.layer_names, self.prior.quadratic_terms()):
            term = self.weights[name] * q
            total = term if total is None else total + term
        return 0.5 * total if total is not None else self.prior.penalty() * 0


def setup_method(model: nn.Module, cfg: TrainConfig) -> MethodSetup:
    """Freeze/unfreeze (and inject LoRA) in place for ``cfg.method``; build the prior if asked."""
    model.requires_grad_(False)
    base = cfg.base_method
    voices = getattr(model, "voices", None)
    if base == "voice" and voices is None:
        raise ValueError("method 'voice' learns a voice pack: the model must be a voice-pack model (Kokoro)")
    if base == "voice":
        pass  # the learned voice below, nothing else
    elif base == "full":
        for name in generator_modules(model):
            getattr(model, name).requires_grad_(True)
    elif base == "linear":
        for layer in (named_layers(model)[n] for n in default_targets(model, ("linear",))):
            layer.requires_grad_(True)
    elif base == "lora":
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)  # the random A matrices depend on the run's seed only
            apply_lora(
                model,
                targets=cfg.lora_targets,
                rank=cfg.lora_rank,
                alpha=cfg.lora_alpha,
                dropout=cfg.lora_dropout,
                layer_types=cfg.lora_layer_types,
            )
    else:  # validated earlier
        raise ValueError(f"unknown method {cfg.method!r}")
    has = set(getattr(model, "module_names", ("text_aligner", "pitch_extractor", *DISCRIMINATORS)))
    aligner = cfg.train_aligner and "text_aligner" in has
    if aligner:
        model.text_aligner.requires_grad_(True)
    for name in discriminators(model):
        getattr(model, name).requires_grad_(True)
    if "pitch_extractor" in has:
        model.pitch_extractor.requires_grad_(False)
    if voices is not None:
        voices.learned.requires_grad_(True)

    prior = build_prior(model, cfg, "lora" if base == "lora" else "full") if cfg.uses_prior else None
    gen = {name: _trainable(getattr(model, name)) for name in generator_modules(model)}
    if aligner:
        gen["text_aligner"] = _trainable(model.text_aligner)
    if voices is not None:
        gen["voices"] = _trainable(voices)
    disc = {name: _trainable(getattr(model, name)) for name in discriminators(model)}
    counts = count_parameters(model)
    counts["generator_trainable"] = {name: sum(p.numel() for p in ps) for name, ps in gen.items()}
    counts["adapted_trainable"] = sum(counts["generator_trainable"][n] for n in generator_modules(model))
    if voices is not None:
        counts["voice_trainable"] = counts["generator_trainable"]["voices"]
    return MethodSetup(cfg.method, gen, disc, prior, counts)


def idle_components(
    model: nn.Module, adversarial: bool, recognizer_paths: bool, speech_lm: bool
) -> dict[str, str]:
    """Components set trainable that no step will change, with the reason: MPD/MSD when ``lambda_gen``
    is 0 (no pass through them), the WavLM discriminator without WavLM, the text aligner when a
    recogniser gives the alignments."""
    idle = {}
    if not adversarial:
        idle.update({name: "lambda_gen 0" for name in discriminators(model) if name in ("mpd", "msd")})
    if not speech_lm and "wd" in discriminators(model):
        idle["wd"] = "no WavLM"
    if recognizer_paths:
        idle["text_aligner"] = "the recogniser aligns"
    return idle


def describe_counts(counts: dict[str, Any], idle: dict[str, str] | None = None) -> str:
    """The per-component table logged at the start of training; ``idle`` components (no step changes
    them, see :func:`idle_components`) show 0 trained parameters and why."""
    idle = idle or {}
    lines = [f"{'component':18s} {'trained':>12s} {'total':>12s} {'%':>7s}"]
    for name, slot in counts["per_module"].items():
        trained = 0 if name in idle else slot["trainable"]
        pct = 100.0 * trained / max(slot["total"], 1)
        note = f"   (not trained: {idle[name]})" if name in idle and slot["trainable"] else ""
        lines.append(f"{name:18s} {trained:12,d} {slot['total']:12,d} {pct:7.3f}{note}")
    adapted, lora = counts["adapted_trainable"], counts["lora"]
    lines.append(f"{'adapted (generator)':18s} {adapted:12,d}   (LoRA parameters: {lora:,d})")
    return "\n".join(lines)
