"""``estimate``: one (two for EKFAC) passes over pre-training data -> :class:`Curvature`.

Resumable: with ``state_path`` the float64 sums, the number of utterances and the next batch index are
written atomically every ``checkpoint_every`` batches; a rerun with the same settings continues from
there. Randomness inside ``loss_fn`` is reseeded from ``(seed, pass, batch index)`` before every batch,
so a resumed or distributed run sees the same random numbers as an uninterrupted single-process one.

Distributed: under an initialised ``torch.distributed`` process group, every rank is given the same
``batches``; rank r computes batches ``r, r + world, ...`` (``shard=True``) or all of its own batches
(``shard=False``, when the caller already split the data), and the sums are all-reduced at the end of
each pass. Partial states are per rank (``<state_path>.rank<r>-of-<world>``).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..adapters.targets import named_layers, resolve_targets
from ..utils.io import load_tensors, save_tensors
from ..utils.seed import seed_everything
from .accumulate import F64, Accumulator
from .layers import LayerSpec, make_spec
from .store import METHODS, Curvature, fingerprint

log = logging.getLogger(__name__)

PARTIAL_FORMAT = "tts-adapt-curvature-partial/1"
LossFn = Callable[[nn.Module, Any], torch.Tensor]


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _iterate(batches: Iterable[Any], start: int, rank: int = 0, step: int = 1) -> Iterator[tuple[int, Any]]:
    """``(global index, batch)`` for indices ``>= start`` with ``index % step == rank``; a Sequence is
    indexed directly, so skipped batches are never loaded."""
    if hasattr(batches, "__getitem__") and hasattr(batches, "__len__"):
        first = start + (rank - start) % step
        for i in range(first, len(batches), step):
            yield i, batches[i]
        return
    for i, batch in enumerate(batches):
        if i >= start and i % step == rank:
            yield i, batch


def _lora_layer_names(model: nn.Module) -> list[str]:
    """The model's LoRA layers; without peft imported no model can hold one, and peft is not loaded."""
    if "peft" not in sys.modules:
        return []
    from ..adapters.lora import lora_layers

    return list(lora_layers(model))


def _batch_seed(seed: int, phase: int, index: int) -> int:
    return (int(seed) * 1_000_003 + phase * 7_919 + index) % (2**31 - 1)


class _RngGuard:
    """Save and restore the global RNGs around the estimation (per-batch reseeding changes them)."""

    def __enter__(self) -> None:
        self.py = random.getstate()
        self.np = np.random.get_state()
        self.cpu = torch.get_rng_state()
        self.cuda = (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else None
        )

    def __exit__(self, *exc: Any) -> None:
        random.setstate(self.py)
        np.random.set_state(self.np)
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def estimate(
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: LossFn,
    method: str,
    targets: str | Sequence[str] | None = None,
    *,
    layer_types: Iterable[str] = ("linear",),
    seed: int = 0,
    state_path: str | Path | None = None,
    checkpoint_every: int = 20,
    shard: bool = True,
    progress: bool = True,
    total_utterances: int | None = None,
    data_description: Any = None,
    scaling: str = "ours",
) -> Curvature:
    """Estimate the curvature of ``loss_fn`` at the model's current weights for the target layers.

    ``loss_fn(model, batch)`` returns per-utterance losses ``Tensor[B]``; utterances must not interact
    (no batch statistics), and padded frames are excluded only where the loss declares them with
    :func:`tts_adapt.curvature.frame_mask`. ``targets``: as in :func:`tts_adapt.adapters.apply_lora`
    (None: the LoRA layers if the model has some, else the paper's defaults). ``method``: ``l2sp`` (no
    data needed), ``diag``, ``kfac`` or ``ekfac`` (two passes, so ``batches`` must be re-iterable).

    ``scaling="reference"`` (kfac, diag) keeps the reference implementation's statistics instead of
    ours (see :mod:`tts_adapt.curvature.accumulate`): per-call means of the batch-mean loss's
    statistics, summed over a batch's calls and averaged over batches; the result records it in
    ``extra["scaling"]`` and the prior then evaluates it without the ½ (``adapt --curvature-scaling
    reference``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown curvature method {method!r}; expected one of {METHODS}")
    if scaling not in ("ours", "reference"):
        raise ValueError(f"curvature scaling must be 'ours' or 'reference', got {scaling!r}")
    if scaling == "reference" and method == "ekfac":
        raise ValueError(
            "the reference implementation has no EKFAC statistic (its 'ekfac' is the KFAC eigenbasis); "
            "estimate ekfac with --scaling ours, or kfac/diag with --scaling reference"
        )
    lora_names = _lora_layer_names(model) if targets is None else []
    names = lora_names or resolve_targets(model, targets, layer_types)
    layers = named_layers(model)
    specs = [make_spec(n, layers[n]) for n in names]
    fp = fingerprint(model, names)
    info = {s.name: s.info() for s in specs}
    if method == "l2sp":
        extra = {"scaling": scaling} if scaling == "reference" else {}
        return Curvature("l2sp", {n: {} for n in names}, info, 0, fp, data_description, extra=extra)
    not_linear = [s.name for s in specs if s.kind != "linear"]
    if scaling == "reference" and not_linear:
        raise ValueError(
            f"the reference implementation's statistics are defined for nn.Linear layers only, not "
            f"{not_linear[:2]}: leave them out of the targets or use --scaling ours"
        )
    lstm = [s.name for s in specs if s.kind == "lstm"]
    if lstm:
        raise ValueError(
            f"curvature method {method!r} is not available for nn.LSTM layers ({lstm[:2]}): the fused LSTM "
            "kernel hides the gate gradients; use method 'l2sp' or leave LSTMs out of the targets"
        )
    if method == "ekfac" and iter(batches) is batches:
        raise ValueError(
            "ekfac makes two passes over the data: pass a list, Sequence or DataLoader, not an iterator"
        )
    if checkpoint_every < 1:
        raise ValueError("checkpoint_every must be >= 1")

    rank, world = _dist()
    state_file = None
    if state_path is not None:
        state_file = Path(state_path) if world == 1 else Path(f"{state_path}.rank{rank}-of-{world}")
    settings = {
        "method": method,
        "targets": names,
        "fingerprint": fp,
        "seed": int(seed),
        "world": world,
        "rank": rank,
        "shard": bool(shard),
        "data": json.loads(json.dumps(data_description, default=str)),
    }
    if scaling != "ours":  # partial states of earlier versions (ours only) still resume
        settings["scaling"] = scaling
    job = _Job(
        model,
        batches,
        loss_fn,
        specs,
        settings,
        state_file,
        checkpoint_every,
        progress,
        total_utterances,
        data_description,
    )
    resume = _read_partial(state_file, settings) if state_file else None

    grads = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with _RngGuard():
            result, n_utt = _run(job, resume)
    finally:
        for p in model.parameters():
            p.requires_grad_(grads.get(id(p), False))
    for s in specs:
        for key in ("frames", "calls", "grad_calls", "batches"):
            if key in result.get(s.name, {}):
                info[s.name][key] = int(result[s.name].pop(key).item())
    if state_file is not None and state_file.exists():
        state_file.unlink()
    extra: dict[str, Any] = {"world_size": world, "seed": seed}
    if scaling == "reference":
        extra.update(scaling="reference", batches=int(next(iter(info.values())).get("batches", 0)))
    return Curvature(method, result, info, n_utt, fp, data_description, extra=extra)


@dataclass
class _Job:
    """Everything one estimation needs, passed between the pass helpers."""

    model: nn.Module
    batches: Iterable[Any]
    loss_fn: LossFn
    specs: list[LayerSpec]
    settings: dict[str, Any]
    state_file: Path | None
    checkpoint_every: int
    progress: bool
    total_utterances: int | None
    data: Any

    @property
    def method(self) -> str:
        return self.settings["method"]

    @property
    def scaling(self) -> str:
        return self.settings.get("scaling", "ours")

    @property
    def rank(self) -> int:
        return self.settings["rank"]

    @property
    def world(self) -> int:
        return self.settings["world"]

    def device_of(self, name: str) -> torch.device:
        spec = next(s for s in self.specs if s.name == name)
        return next(spec.module.parameters()).device


def _read_partial(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    tensors, meta = load_tensors(path)
    if meta.get("format") != PARTIAL_FORMAT:
        raise ValueError(f"{path} is not a partial curvature state")
    for key, value in settings.items():
        if meta.get(key) != value:
            raise ValueError(
                f"partial curvature state {path} was made with a different {key} "
                f"({meta.get(key)!r} != {value!r}); delete it or choose another state path"
            )
    log.info("resuming curvature from %s (pass %d, batch %d)", path, meta["phase"] + 1, meta["next_index"])
    return {"tensors": tensors, "meta": meta}


def _write_partial(
    job: _Job, phase: int, next_index: int, acc: Accumulator, kfac: dict[str, dict[str, torch.Tensor]] | None
) -> None:
    tensors = {f"acc/{k}": v for k, v in acc.state().items()}
    for name, d in (kfac or {}).items():
        tensors.update({f"kfac/{name}/{k}": v for k, v in d.items()})
    meta = {**job.settings, "format": PARTIAL_FORMAT, "phase": phase, "next_index": next_index}
    save_tensors(job.state_file, tensors, meta)


def _run(job: _Job, resume: dict[str, Any] | None) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """All passes (resuming where a partial state left off) -> ``(per-layer tensors, N)``."""
    stats = ["kfac", "ekfac"] if job.method == "ekfac" else [job.method]
    kfac: dict[str, dict[str, torch.Tensor]] | None = None
    first_phase, start = 0, 0
    if resume is not None:
        first_phase, start = int(resume["meta"]["phase"]), int(resume["meta"]["next_index"])
        saved = {k[len("kfac/") :]: v for k, v in resume["tensors"].items() if k.startswith("kfac/")}
        if saved:
            kfac = {}
            for key, v in saved.items():
                name, _, sub = key.rpartition("/")
                kfac.setdefault(name, {})[sub] = v.to(job.device_of(name))
    result: dict[str, dict[str, torch.Tensor]] = {}
    n_utt = 0
    for phase in range(first_phase, len(stats)):
        stat = stats[phase]
        acc = Accumulator(job.specs, stat, bases=kfac if stat == "ekfac" else None, scaling=job.scaling)
        if resume is not None and phase == first_phase:
            acc.load_state(
                {k[len("acc/") :]: v for k, v in resume["tensors"].items() if k.startswith("acc/")}
            )
        else:
            start = 0
        _pass(job, acc, phase, len(stats), start, kfac)
        if job.world > 1:
            acc.all_reduce()
        n_utt = acc.count_utterances
        if n_utt == 0:
            raise ValueError("no utterances were processed: the data is empty")
        if job.scaling == "reference":
            result = _reference_factors(acc)
        elif stat == "kfac":
            kfac = _kfac_factors(acc, n_utt)
            if job.method == "ekfac":
                kfac = _eigenbases(kfac, job.world)
                if job.state_file is not None:
                    _write_partial(job, phase + 1, 0, Accumulator(job.specs, "ekfac", kfac), kfac)
            result = kfac
        elif stat == "diag":
            result = {n: {"diag": d["sq"] / n_utt, "frames": d["frames"]} for n, d in acc.sums.items()}
        else:  # ekfac
            result = {n: {**kfac[n], "scale": acc.sums[n]["sq"] / n_utt} for n in acc.sums}
        silent = [s.name for s in job.specs if s.name not in acc.fired] if job.world == 1 else []
        if silent:
            log.warning(
                "%d target layers received no gradient (their curvature is zero): %s", len(silent), silent[:5]
            )
    return result, n_utt


def _pass(
    job: _Job,
    acc: Accumulator,
    phase: int,
    n_phases: int,
    start: int,
    kfac: dict[str, dict[str, torch.Tensor]] | None,
) -> None:
    from ..utils.progress import progress_bar as tqdm

    shard, world = job.settings["shard"], job.world
    scale = world if shard else 1  # progress counts every rank's utterances
    desc = f"curvature {job.method}" + (f" pass {phase + 1}/{n_phases}" if n_phases > 1 else "")
    bar = tqdm(
        total=job.total_utterances,
        unit="utt",
        desc=desc,
        dynamic_ncols=True,
        disable=not job.progress or job.rank != 0,
    )
    bar.update(acc.count_utterances * scale)
    done = 0
    acc.attach()
    t0 = time.perf_counter()
    try:
        for index, batch in _iterate(job.batches, start, job.rank if shard else 0, scale):
            seed_everything(_batch_seed(job.settings["seed"], phase, index))
            try:
                losses = job.loss_fn(job.model, batch)
                b = _check_losses(losses, index)
                acc.begin_batch(b)
                losses.sum().backward()
            except BaseException:
                acc.discard_batch()
                raise
            acc.end_batch(b)
            done += 1
            bar.update(b * scale)
            if job.state_file is not None and done % job.checkpoint_every == 0:
                _write_partial(job, phase, index + 1, acc, kfac)
    finally:
        acc.detach()
        bar.close()
    log.info("%s: %d utterances in %.1f s", desc, acc.count_utterances, time.perf_counter() - t0)


def _check_losses(losses: Any, index: int) -> int:
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1 or losses.numel() == 0:
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"loss_fn must return per-utterance losses Tensor[B]; batch {index} gave {shape}")
    if not losses.requires_grad:
        raise ValueError(f"batch {index}: the loss does not depend on any target layer (no gradient path)")
    if not bool(torch.isfinite(losses.detach()).all()):
        raise ValueError(f"batch {index}: non-finite per-utterance loss {losses.detach().tolist()}")
    return losses.numel()


def _kfac_factors(acc: Accumulator, n_utt: int) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name, d in acc.sums.items():
        frames = d["frames"]
        a = d["A"] / frames if float(frames) > 0 else torch.zeros_like(d["A"])
        out[name] = {"A": 0.5 * (a + a.T), "G": 0.5 * (d["G"] + d["G"].T) / n_utt, "frames": frames.clone()}
    return out


def _reference_factors(acc: Accumulator) -> dict[str, dict[str, torch.Tensor]]:
    """The reference's normalisation: the per-batch sums of per-call means divided by the batches."""
    out = {}
    iters = acc.count_batches
    for name, d in acc.sums.items():
        counts = {k: d[k].clone() for k in ("calls", "grad_calls")}
        counts["batches"] = torch.tensor(float(iters), dtype=F64)
        if acc.stat == "kfac":
            a, g = d["A"] / iters, d["G"] / iters
            out[name] = {"A": 0.5 * (a + a.T), "G": 0.5 * (g + g.T), **counts}
        else:
            out[name] = {"diag": d["sq"] / iters, **counts}
    return out


def _eigenbases(kfac: dict[str, dict[str, torch.Tensor]], world: int) -> dict[str, dict[str, torch.Tensor]]:
    """Eigenvectors of A and G (computed on rank 0 and broadcast so that every rank rotates alike)."""
    import torch.distributed as dist

    out = {}
    for name, d in kfac.items():
        qa = torch.linalg.eigh(d["A"].to(F64))[1].contiguous()
        qg = torch.linalg.eigh(d["G"].to(F64))[1].contiguous()
        if world > 1:
            dist.broadcast(qa, src=0)
            dist.broadcast(qg, src=0)
        out[name] = {"A": d["A"], "G": d["G"], "QA": qa, "QG": qg, "frames": d["frames"]}
    return out
