"""The collectives the SLM step relies on, in two real gloo processes.

A rank whose shard yields no usable SLM clip must not return before the gradient all-reduce the other
rank is waiting in: the skip is decided with ``any_true`` on every rank. A branch that leaves a gradient
unset on one rank only must not change how the ranks flatten their gradients. Oracle: the sum of the
two ranks' gradients computed by hand, with a missing gradient counting as zero.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, result: str) -> None:
    import torch.distributed as dist

    from tts_adapt.train.distributed import DistInfo, any_true, sum_gradients

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    info = DistInfo(rank, 2)
    a, b, c, d = (torch.nn.Parameter(torch.zeros(n)) for n in (2, 3, 4, 1))
    # rank 0: grads for a and b; rank 1: grads for b and c; nobody touches d
    a.grad = torch.full((2,), 1.0) if rank == 0 else None
    b.grad = torch.full((3,), 10.0 * (rank + 1))
    c.grad = torch.full((4,), 5.0) if rank == 1 else None
    sum_gradients([a, b, c, d], info)
    skip = any_true(rank == 1, info, torch.device("cpu"))  # only rank 1 found no usable clip
    out = {"a": a.grad, "b": b.grad, "c": c.grad, "d": d.grad, "skip": skip}
    torch.save(out, f"{result}.{rank}")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="gloo multiprocessing test")
def test_mixed_missing_gradients_and_a_collective_skip(tmp_path):
    result = str(tmp_path / "r")
    mp.spawn(_worker, args=(_free_port(), result), nprocs=2, join=True)
    for rank in (0, 1):
        got = torch.load(f"{result}.{rank}", weights_only=True)
        torch.testing.assert_close(got["a"], torch.full((2,), 1.0))
        torch.testing.assert_close(got["b"], torch.full((3,), 30.0))
        torch.testing.assert_close(got["c"], torch.full((4,), 5.0))
        assert got["d"] is None  # no gradient anywhere: the optimiser still skips it
        assert got["skip"] is True  # both ranks take the same branch
