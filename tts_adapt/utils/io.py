"""Crash-safe artifact I/O: everything we write goes to a temp file in the same folder, then rename.

Our own tensors are stored as safetensors with a JSON metadata blob; foreign checkpoints are read
with ``torch.load(weights_only=True)`` so that a pickle carrying code is refused, not executed.

A renamed temporary file gets the mode an ordinary ``open()`` would have given it (``0o666`` less the
umask), not ``mkstemp``'s private ``0o600``. A write that fails because the disk is full raises
:class:`DiskFullError` naming the folder and the space the file needs; the temporary file is removed,
so nothing half-written is left under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


class DiskFullError(RuntimeError):
    """A write that ran out of disk space; the message names the folder and the space needed.

    A ``RuntimeError`` so that the command line prints it as its usual one-line error.
    """

    def __init__(self, message: str, folder: Path, needed: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC
        self.folder = folder
        self.needed = needed


_NO_SPACE_TEXT = ("no space left on device", "os error 28", "disk quota exceeded")


def is_disk_full(error: BaseException) -> bool:
    """``ENOSPC``/``EDQUOT`` in an ``OSError`` or its text (safetensors and torch wrap the OS error)."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, DiskFullError):
            return True
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(t in str(e).lower() for t in _NO_SPACE_TEXT):
            return True
        e = e.__cause__ or e.__context__
    return False


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


def disk_full_error(folder: Path, what: str, needed: int | None) -> DiskFullError:
    """The one-line message for a full disk under ``folder`` (free space measured now)."""
    try:
        free = shutil.disk_usage(folder).free
        free_text = f"{human_bytes(free)} free"
    except OSError:
        free_text = "free space unknown"
    need_text = f"needs about {human_bytes(needed)}" if needed else "needs more space"
    return DiskFullError(
        f"no space left on device in {folder}: writing {what} {need_text} ({free_text}); "
        "free some space or choose another output folder, then rerun (nothing was left half-written)",
        folder,
        needed,
    )


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only a read)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode ``mkdir()`` gives a new folder: ``0o777`` less the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", size_hint: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    ``size_hint`` (bytes the file will take, if known) goes into the message of a
    :class:`DiskFullError` when the disk fills up while writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except Exception as e:
        if isinstance(e, DiskFullError):
            raise
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        # torch.save reports a full disk only as "file write failed": compare with the free space
        if is_disk_full(e) or (size_hint is not None and _free_bytes(path.parent) < size_hint):
            raise disk_full_error(path.parent, path.name, size_hint) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Copy a file atomically (temp file + rename): a copy cut short never looks finished."""
    import shutil

    size = Path(source).stat().st_size
    with atomic_path(path, suffix=Path(path).suffix, size_hint=size) as tmp:
        shutil.copyfile(source, tmp)


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
    size = sum(v.numel() * v.element_size() for v in clean.values()) + len(meta["tts_adapt"])
    with atomic_path(path, size_hint=size) as tmp:
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
    """``torch.load`` restricted to tensors and plain containers; a pickle with code is an error.

    The error says what is wrong with the file (damaged, not a checkpoint, or carrying code) and never
    passes on torch's advice to retry with ``weights_only=False``, which would run whatever code the
    file carries.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError from the zip reader, EOFError, ...
        raise ValueError(f"refusing to load {path}: {_load_failure(e)}") from None


def _load_failure(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in our words (torch's text suggests unsafe loading)."""
    import re

    text = str(error)
    found = re.search(r"unsupported GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"it carries Python objects besides tensors ({found.group(1)}), which could run code when "
            "loaded; only plain tensor checkpoints are accepted"
        )
    if "central directory" in text or "PytorchStreamReader" in text or isinstance(error, EOFError):
        return "the file is damaged or truncated (not a complete PyTorch archive); download or copy it again"
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    detail = found.group(1).strip() if found else type(error).__name__
    if found is None:
        lines = [ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
        detail = lines[0].strip() if lines else type(error).__name__
    return f"it is damaged or not a PyTorch checkpoint ({detail})"
