"""Two gloo processes give the same curvature as one process (float64, 1e-10)."""

from __future__ import annotations

import os
import socket
import traceback

import pytest
import torch
import torch.multiprocessing as mp

from tts_adapt.curvature import Curvature, estimate

from ..adapters.toys import make_toy
from .test_store_resume import TARGETS, TYPES, noisy_loss, toy_batches

METHODS = ("diag", "kfac", "ekfac")
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _estimate(method: str):
    """The same estimate in every process (and in the single-process reference)."""
    return estimate(
        make_toy(dtype=torch.float64),
        toy_batches(5),
        noisy_loss,
        method,
        TARGETS,
        layer_types=TYPES,
        progress=False,
    )


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    try:
        torch.set_num_threads(1)
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        for method in METHODS:
            curv = _estimate(method)
            if rank == 0:
                curv.save(os.path.join(out_dir, f"{method}.safetensors"))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:
        with open(os.path.join(out_dir, f"error{rank}.txt"), "w") as f:
            f.write(traceback.format_exc())
        raise


def test_two_gloo_processes_equal_one(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT_S)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.terminate()
        p.join(5)
    errors = [f.read_text() for f in tmp_path.glob("error*.txt")]
    assert not alive, "distributed estimation timed out"
    assert not errors and all(p.exitcode == 0 for p in procs), "\n".join(errors)
    for method in METHODS:
        single = _estimate(method)
        dist = Curvature.load(tmp_path / f"{method}.safetensors")
        assert dist.num_utterances == single.num_utterances == 15
        assert dist.extra["world_size"] == 2
        for name in single.layers:
            for key, t in single.layers[name].items():
                if key in ("QA", "QG"):  # compare the bases through what they define (sign-free)
                    continue
                torch.testing.assert_close(dist.layers[name][key], t, rtol=1e-10, atol=1e-10)
            if method == "ekfac":
                for key in ("QA", "QG"):
                    q1, q2 = dist.layers[name][key], single.layers[name][key]
                    torch.testing.assert_close(
                        (q1 * q2).sum(0).abs(), torch.ones(q1.shape[1], dtype=q1.dtype), rtol=0, atol=1e-8
                    )
