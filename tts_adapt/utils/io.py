"""Crash-safe artifact I/O: everything we write goes to a temp file in the same folder, then rename.

Our own tensors are stored as safetensors with a JSON metadata blob; foreign checkpoints are read
with ``torch.load(weights_only=True)`` so that a pickle carrying code is refused, not executed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> None:
    """safetensors file with ``metadata`` stored as JSON under the ``"tts_adapt"`` header key."""
    from safetensors.torch import save_file

    # safetensors refuses tensors that share memory (views, or one tensor under two names): copy those
    clean: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in tensors.items():
        v = v.detach()
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        if _shares_storage(v) or ptr in seen:
            v = v.contiguous().clone()
        else:
            v = v.contiguous()
        seen.add(ptr)
        clean[k] = v
    meta = {"tts_adapt": json.dumps(metadata or {}, default=_json_default)}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=meta)


def _shares_storage(t: torch.Tensor) -> bool:
    return t.untyped_storage().nbytes() != t.numel() * t.element_size()


def load_tensors(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Inverse of :func:`save_tensors`: ``(tensors, metadata)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta_raw = (f.metadata() or {}).get("tts_adapt", "{}")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
    return tensors, json.loads(meta_raw)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("tts_adapt", "{}"))


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` restricted to tensors and plain containers; a pickle with code is an error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as e:  # UnpicklingError and friends
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(
            f"refusing to load {path}: it is not a plain tensor checkpoint that "
            f"torch.load(weights_only=True) accepts ({type(e).__name__}: {first_line})"
        ) from e
