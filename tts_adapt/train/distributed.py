"""Data parallelism without DistributedDataParallel's forward wrapper.

StyleTTS 2 training calls many sub-modules and methods, not one ``forward``, so instead of wrapping the
model every process computes its share of the global batch and gradients are summed across processes
before each optimiser step. Each process's loss is ``sum(per-utterance losses) / global batch size``,
so the summed gradient is exactly the single-process gradient of the mean loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist

from ..data.dataset import Batch


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env(backend: str | None = None) -> DistInfo:
    """Join the process group ``torchrun`` (or the test harness) describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size())


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.active:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def sum_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Sum ``.grad`` across processes (flattened into one buffer).

    Every process must flatten the same parameters in the same order, even when a branch left some
    gradient unset on one process only: a first collective agrees on which parameters have a gradient
    anywhere, and those missing here join as zeros. Parameters without a gradient anywhere stay
    ``None`` (so the optimiser still skips them).
    """
    if not info.active or not params:
        return
    device = params[0].device
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    grads = []
    for p, anywhere in zip(params, present.tolist()):
        if anywhere:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True if ``flag`` holds on any process (so all processes skip a bad batch together)."""
    if not info.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def shard(batch: Batch, info: DistInfo) -> Batch:
    """This process's rows of a global batch (every ``world``-th row from ``rank``), padding kept."""
    if not info.active:
        return batch
    rows = list(range(info.rank, len(batch), info.world))
    index = torch.tensor(rows)
    values = {}
    for f in fields(batch):
        v = getattr(batch, f.name)
        if isinstance(v, torch.Tensor):
            values[f.name] = v.index_select(0, index.to(v.device))
        elif isinstance(v, list):
            values[f.name] = [v[i] for i in rows]
        else:
            values[f.name] = v
    return Batch(**values)
