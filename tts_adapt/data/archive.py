"""Verifying and safely extracting downloaded archives.

An archive from the internet is untrusted input: a member named ``../../.bashrc`` or ``/etc/x``, or
a link pointing outside the destination, must never be written. Every member is checked before
anything is extracted; extraction goes to a temporary folder inside the destination and its
top-level entries are renamed into place only when the whole archive extracted cleanly, so a
truncated or corrupt archive leaves the destination as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the destination (or is a device, fifo or unsafe link)."""


class NotEnoughSpaceError(RuntimeError):
    """The destination's file system cannot hold the extracted archive."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str | None = None, size: int | None = None) -> str:
    """Check ``path`` against a known size and sha256 (either may be ``None``); return its sha256."""
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ValueError(f"{path} is {actual_size} bytes, expected {size} (incomplete or wrong file)")
    digest = sha256_file(path)
    if sha256 is not None and digest.lower() != sha256.lower().removeprefix("sha256:"):
        raise ValueError(f"{path} has sha256 {digest}, expected {sha256.lower().removeprefix('sha256:')}")
    return digest


def _check_name(name: str, archive: Path) -> PurePosixPath:
    """A member name as a safe relative path, or :class:`UnsafeArchiveError`."""
    norm = name.replace("\\", "/")
    p = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or p.is_absolute():
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    parts = [x for x in p.parts if x not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} points outside the destination ('..'); refusing"
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _inside(target: PurePosixPath) -> bool:
    """Whether a normalised relative path stays inside the root."""
    depth = 0
    for part in target.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return False
    return True


def _check_tar(tf: tarfile.TarFile, archive: Path) -> int:
    total = 0
    for m in tf.getmembers():
        rel = _check_name(m.name, archive)
        if m.ischr() or m.isblk() or m.isfifo():
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo; refusing to extract")
        if m.issym():
            if m.linkname.startswith("/") or not _inside(rel.parent / m.linkname):
                raise UnsafeArchiveError(
                    f"{archive}: symlink {m.name!r} -> {m.linkname!r} leaves the destination; refusing"
                )
        elif m.islnk():
            target = _check_name(m.linkname, archive)
            if not _inside(target):
                raise UnsafeArchiveError(
                    f"{archive}: hard link {m.name!r} -> {m.linkname!r} points outside; refusing"
                )
        total += max(0, m.size)
    return total


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> int:
    total = 0
    for info in zf.infolist():
        _check_name(info.filename, archive)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"{archive}: zip member {info.filename!r} is a symbolic link; refusing")
        total += info.file_size
    return total


def archive_kind(path: str | os.PathLike) -> str:
    """``"zip"`` or ``"tar"`` (any compression tarfile reads), else a ValueError."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError):
        pass
    raise ValueError(f"{path} is not a zip or tar archive (or it is truncated)")


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, into: str | None = None) -> list[str]:
    """Extract ``archive`` into ``dest`` (or ``dest/into``) after checking every member.

    Returns the archive's top-level names. Existing folders are merged into (so several LibriTTS
    subsets share one ``LibriTTS/``) but an existing file is never overwritten unless identical.
    Members outside the destination, absolute paths, devices and links leaving the destination are
    refused. On any failure nothing is left in ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        root = tmp / into if into else tmp
        root.mkdir(parents=True, exist_ok=True)
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    _ensure_space(_check_zip(zf, archive), dest, archive)
                    for info in zf.infolist():
                        zf.extract(info, root)
            else:
                with tarfile.open(archive) as tf:
                    _ensure_space(_check_tar(tf, archive), dest, archive)
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(root, filter="data")
                    else:  # Python without extraction filters: members were checked above
                        tf.extractall(root)  # noqa: S202
        except (UnsafeArchiveError, NotEnoughSpaceError):
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise ValueError(
                f"{archive} is corrupt or truncated ({type(e).__name__}: {e}); nothing was extracted"
            ) from e
        names = sorted(p.name for p in tmp.iterdir())
        moves, clashes = _plan_merge(tmp, dest)
        if clashes:
            shown = ", ".join(str(c) for c in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
            raise FileExistsError(
                f"{dest} already has different files at {shown}; remove them or choose another destination"
            )
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and sha256_file(a) == sha256_file(b)


def _plan_merge(src: Path, dst: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Renames that merge ``src`` into ``dst``: new entries move whole, existing folders are merged,
    identical existing files are left alone (LibriTTS subsets share their top-level notes); any
    other existing entry is a clash."""
    moves: list[tuple[Path, Path]] = []
    clashes: list[Path] = []
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if not target.exists() and not target.is_symlink():
            moves.append((entry, target))
        elif entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            sub_moves, sub_clashes = _plan_merge(entry, target)
            moves += sub_moves
            clashes += sub_clashes
        elif entry.is_file() and not entry.is_symlink() and target.is_file() and _same_file(entry, target):
            continue
        else:
            clashes.append(target)
    return moves, clashes


def _ensure_space(needed: int, dest: Path, archive: Path) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise NotEnoughSpaceError(
            f"extracting {archive} needs {needed / 1e9:.1f} GB but {dest} has {free / 1e9:.1f} GB free"
        )
