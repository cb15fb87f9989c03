"""Training checkpoints as safetensors + JSON, written atomically, for exact resumption.

A checkpoint folder ``step-000123/`` holds ``weights.safetensors`` (trainable parameters and all buffers),
``optimizer.safetensors`` (the Adam moments, flattened) and ``state.json`` (step, data position, RNG
states, optimiser structure, anything else the trainer keeps). It is written under a temporary name and
renamed into place, so a crash never leaves a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils.io import DiskFullError, dir_mode, disk_full_error, is_disk_full, load_tensors, save_tensors

STATE = "state.json"
WEIGHTS = "weights.safetensors"
OPTIM = "optimizer.safetensors"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter and every buffer, by state-dict name (aliases included)."""
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    buffers = {id(b) for b in model.buffers()}
    out = {}
    for name, t in model.state_dict(keep_vars=True).items():
        if id(t) in trainable or id(t) in buffers:
            out[name] = t.detach()
    return out


def flatten_optimizer(
    opt: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        entry = {}
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}/{pid}/{key}"] = value
                entry[key] = None
            else:
                entry[key] = value
        state_meta[str(pid)] = entry
    return tensors, {"param_groups": sd["param_groups"], "state": state_meta}


def restore_optimizer(
    opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state = {}
    for pid, entry in meta["state"].items():
        state[int(pid)] = {k: (tensors[f"{prefix}/{pid}/{k}"] if v is None else v) for k, v in entry.items()}
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": _jsonable(random.getstate()),
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    if meta.get("cuda_devices") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[f"rng/cuda{i}"] for i in range(meta["cuda_devices"])])
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    random.setstate(_tuplify(meta["python"]))


def _jsonable(x: Any) -> Any:
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


def save_checkpoint(
    folder: str | os.PathLike,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer | None],
    state: dict[str, Any],
) -> Path:
    """Write one checkpoint folder atomically; returns its path.

    On a full disk the partial folder is removed and :class:`DiskFullError` names the folder and the
    size of the whole checkpoint (the previous checkpoint, if any, is kept).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    os.chmod(tmp, dir_mode())  # mkdtemp's folder is private (0o700); a checkpoint is an ordinary folder
    weights = {k: v.cpu() for k, v in trainable_state(model).items()}
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        if opt is not None:
            t, m = flatten_optimizer(opt, name)
            opt_tensors.update({k: v.cpu() for k, v in t.items()})
            opt_meta[name] = m
    rng_t, rng_m = rng_state()
    try:
        save_tensors(tmp / WEIGHTS, weights)
        save_tensors(tmp / OPTIM, {**opt_tensors, **rng_t})
        full = {**state, "optimizers": opt_meta, "rng": rng_m}
        (tmp / STATE).write_text(json.dumps(full, indent=1, default=str), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except Exception as e:
        if not is_disk_full(e):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        tensors = [*weights.values(), *opt_tensors.values(), *rng_t.values()]
        needed = sum(t.numel() * t.element_size() for t in tensors)
        raise disk_full_error(folder.parent, f"checkpoint {folder.name}", needed) from (
            e.__cause__ if isinstance(e, DiskFullError) and e.__cause__ else e
        )
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_checkpoint(
    folder: str | os.PathLike,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer | None],
    restore_random: bool = True,
) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote into ``model``/``optimizers``; returns ``state``."""
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint {folder} is unreadable ({e})") from e
    weights, _ = load_tensors(folder / WEIGHTS)
    expected = trainable_state(model)
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ValueError(
            f"checkpoint {folder} lacks {len(missing)} tensors the model trains, e.g. {missing[:3]}"
        )
    with torch.no_grad():
        for name, t in expected.items():
            t.copy_(weights[name])
    tensors, _ = load_tensors(folder / OPTIM)
    for name, opt in optimizers.items():
        if opt is not None:
            restore_optimizer(opt, name, tensors, state["optimizers"][name])
    if restore_random:
        restore_rng(tensors, state["rng"])
    return state


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete ``step-*`` folder under ``root`` (temporary folders are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if p.is_dir() and (p / STATE).exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def prune_checkpoints(root: str | os.PathLike, keep: int) -> None:
    root = Path(root)
    done = sorted(
        (p for p in root.glob("step-*") if (p / STATE).exists()), key=lambda p: int(p.name.split("-")[1])
    )
    for old in done[: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".step-*"):
        shutil.rmtree(stale, ignore_errors=True)
