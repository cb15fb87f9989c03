"""What an adaptation run will do, checked and printed before a GPU is booked (``adapt --dry-run``).

Building the plan does the work a run would fail on first: the checkpoint is loaded, the method is set
up on it (LoRA targets resolved, the curvature file read and matched to the model's layers), every
audio file is checked to exist, and the settings are validated. Nothing is trained or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from ..data.utterance import Utterance
from .config import TrainConfig
from .methods import describe_counts, idle_components, setup_method


def data_summary(utts: Sequence[Utterance]) -> str:
    """Utterances, speakers and hours (from the audio headers); raises if a listed file is missing."""
    missing = [u.audio_path for u in utts if not Path(u.audio_path).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(utts)} listed audio files do not exist, "
            f"e.g. {', '.join(map(str, missing[:3]))}"
        )
    known = [u.duration for u in utts if u.duration is not None]
    speakers = sorted({u.speaker for u in utts})
    hours = f"{sum(known) / 3600:.3f} h" if known else "unknown duration"
    shown = ", ".join(speakers[:5]) + (" ..." if len(speakers) > 5 else "")
    return f"{len(utts)} utterances, {len(speakers)} speaker(s) ({shown}), {hours}"


def stage_ranges(cfg: TrainConfig, slm_on: bool) -> list[str]:
    """Step ranges of the official stages: all terms but diffusion; style diffusion; SLM-adversarial."""
    last = cfg.steps - 1
    lines = [f"  generator + discriminators: steps 0-{last}"]
    if cfg.diff_start < cfg.steps:
        lines.append(f"  style diffusion:            steps {cfg.diff_start}-{last}")
    else:
        lines.append(
            f"  style diffusion:            never (diff_start {cfg.diff_start} >= steps {cfg.steps})"
        )
    if cfg.joint_start is None or cfg.joint_start >= cfg.steps:
        lines.append("  SLM-adversarial (joint):    never (no joint_start within the run)")
    elif not slm_on:
        lines.append("  SLM-adversarial (joint):    off (--no-slm)")
    else:
        lines.append(f"  SLM-adversarial (joint):    steps {max(cfg.joint_start, cfg.diff_start)}-{last}")
    return lines


def adaptation_plan(
    model: nn.Module,
    cfg: TrainConfig,
    utts: Sequence[Utterance],
    *,
    slm: str,
    ood: str,
) -> str:
    """Set ``cfg.method`` up on ``model`` (in place) and describe the run; raises on any problem."""
    data = data_summary(utts)
    setup = setup_method(model, cfg)
    prior = "none"
    if setup.prior is not None:
        curvature = "identity (L2-SP)" if cfg.curvature == "l2sp" else cfg.curvature
        prior = f"lambda {cfg.strength} x {curvature} on the curvature's layers"
    f0 = "JDC pitch extractor of the checkpoint" if cfg.f0 == "jdc" else f"{cfg.f0} (DSP tracker)"
    from ..alignment.paths import recognizer_paths_from_config

    paths = recognizer_paths_from_config(model)  # loads and checks the recogniser the config names
    if paths is None:
        alignment = "the text aligner's attention with monotonic search (official); s2s and mono train it"
    else:
        alignment = (
            f"the recogniser the config names ({model.config['alignment_recognizer']}), as in pre-training"
        )
    gen = (model.config.get("loss_params") or {}).get("lambda_gen", 1.0)
    adversarial = "MPD/MSD" if gen else "off (lambda_gen 0: no MPD/MSD pass)"
    lines = [
        f"plan: {cfg.method}, {cfg.steps} steps of {cfg.batch_size} x {cfg.grad_accum} utterances "
        f"on {cfg.device}",
        f"data: {data}",
        "stages:",
        *stage_ranges(cfg, slm_on=not cfg.no_slm),
        f"F0 targets: {f0}",
        f"alignments: {alignment}",
        f"adversarial: {adversarial}",
        f"SLM: {slm}",
        f"out-of-distribution texts: {ood}",
        f"prior: {prior}",
        "trained parameters:",
        describe_counts(setup.counts, idle_components(model, bool(gen), paths is not None, not cfg.no_slm)),
    ]
    return "\n".join(lines)
