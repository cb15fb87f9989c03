"""Which base checkpoint an adaptation belongs to, and a refusal to put it on any other.

A LoRA adapter (or a set of changed weights) only means something on top of the exact weights it was
trained from: on another base it still loads, still synthesises, and silently produces a different
voice. ``tts-adapt adapt`` records two hashes of its base in ``manifest.json``: the sha256 of the file,
and the sha256 of its weights in a canonical order (``weights_sha256``). The file hash alone is not
enough to recognise the same weights under another name: ``torch.save`` stores the file's own name
inside the archive, so re-saving identical weights (or copying them with ``torch.save`` to another
name) changes the file hash. Loading compares the file hash first (cheap) and the weights hash when the
files differ.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch

#: The command-line flag that skips the check (named in every refusal).
ALLOW_FLAG = "--allow-base-mismatch"


class BaseMismatchError(ValueError):
    """An adapted model and a base checkpoint that are not the one it was adapted from."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_HASHES: dict[tuple[str, str, int, int], str] = {}


def _cached(kind: str, path: str | os.PathLike, compute) -> str:
    """Hash once per file version (path, size, mtime): the demo loads several adapters on one base."""
    st = os.stat(path)
    key = (kind, os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = compute(path)
    return _HASHES[key]


def weights_sha256(checkpoint: str | os.PathLike) -> str:
    """sha256 of an official checkpoint's weights, independent of file name, pickling and key prefixes.

    Modules and keys are visited in sorted order (after the one ``module.`` prefix is stripped, so a
    DataParallel and a plain save of the same weights agree); each tensor contributes its name, dtype,
    shape and raw bytes. Training state outside ``net`` (optimiser, epoch) is not part of the weights.
    """
    from ..models.styletts2.checkpoint import IGNORABLE, read_net

    h = hashlib.sha256()
    for module, state in sorted(read_net(checkpoint).items()):
        for key in sorted(state):
            if key in IGNORABLE.get(module, set()):
                continue
            t = state[key]
            if not torch.is_tensor(t):
                raise ValueError(f"{checkpoint}: net.{module}.{key} is not a tensor")
            t = t.detach().cpu().contiguous()
            h.update(f"{module}.{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def base_record(checkpoint: str | os.PathLike) -> dict[str, str]:
    """The hashes ``tts-adapt adapt`` writes into the manifest's ``base`` entry."""
    return {"sha256": sha256_file(checkpoint), "weights_sha256": weights_sha256(checkpoint)}


def check_base(
    adapted: str | os.PathLike,
    checkpoint: str | os.PathLike,
    manifest: dict[str, Any] | None = None,
    *,
    allow_mismatch: bool = False,
) -> str:
    """Refuse ``checkpoint`` unless it holds the weights the folder ``adapted`` was adapted from.

    Returns how it matched: ``"file"`` (same bytes), ``"weights"`` (same weights, other file),
    ``"unrecorded"`` (the folder recorded no hash: a warning is logged), or ``"allowed"`` (a mismatch
    let through by ``allow_mismatch``, also logged). Raises :class:`BaseMismatchError` naming both
    checkpoints otherwise.
    """
    import logging

    from .manifest import read_manifest

    log = logging.getLogger(__name__)
    manifest = manifest if manifest is not None else read_manifest(adapted)
    base = manifest.get("base") or {}
    recorded_file, recorded_weights = base.get("sha256"), base.get("weights_sha256")
    recorded_path = base.get("checkpoint") or "(path not recorded)"
    if not recorded_file and not recorded_weights:
        log.warning(
            "%s records no hash of its base checkpoint; cannot check that %s is the base it was adapted from",
            adapted,
            checkpoint,
        )
        return "unrecorded"
    file_hash = _cached("file", checkpoint, sha256_file)
    if recorded_file and file_hash == recorded_file:
        return "file"
    weights_hash = _cached("weights", checkpoint, weights_sha256) if recorded_weights else None
    if weights_hash is not None and weights_hash == recorded_weights:
        return "weights"
    if recorded_weights:
        detail = f"weights sha256 {recorded_weights[:12]}… vs {weights_hash[:12]}…"  # type: ignore[index]
    else:
        detail = (
            f"file sha256 {recorded_file[:12]}… vs {file_hash[:12]}…; this folder predates weight hashes, "
            "so identical weights saved under another file also differ"
        )
    message = (
        f"{adapted} was adapted from the base checkpoint {recorded_path}, not from {checkpoint} "
        f"({detail}); an adapter on another base gives another voice. Pass the checkpoint it was adapted "
        f"from, or {ALLOW_FLAG} to load it anyway"
    )
    if allow_mismatch:
        log.warning("%s (%s given)", message, ALLOW_FLAG)
        return "allowed"
    raise BaseMismatchError(message)
