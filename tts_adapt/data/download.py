"""Downloads for users with internet: the official checkpoint and the corpora, verified.

The checkpoint comes through ``huggingface_hub`` (its cache, resume and ``HF_HUB_OFFLINE`` mode
behave as users expect) and is then checked against the Hub's recorded size and sha256. Corpus
archives come through ``pooch`` (retries, hash check, move into place only when complete) with a
downloader added here that resumes an interrupted transfer and checks the byte count; extraction is
:func:`archive.safe_extract`. What each destination holds is recorded in ``.tts-adapt-downloads.json``
so a finished download is not repeated.

Published checksums: the sha256 values below are those torchaudio's dataset loaders verify against
(``torchaudio.datasets.libritts``, ``vctk``, ``ljspeech``); they could not be re-checked from here.
Sizes are not listed because no exact figures were available; the byte count the server announces
is enforced instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests  # a dependency of pooch (the ``data`` extra)

from ..utils.io import write_json
from .archive import UnsafeArchiveError, safe_extract, verify_file

log = logging.getLogger(__name__)

MANIFEST = ".tts-adapt-downloads.json"
ARCHIVE_DIR = ".downloads"

CHECKPOINT_REPO = "yl4579/StyleTTS2-LibriTTS"
CHECKPOINT_FILES = ("Models/LibriTTS/epochs_2nd_00020.pth", "Models/LibriTTS/config.yml")
# Kokoro-82M v1.0's float checkpoint and config (Apache-2.0); the voice packs ship with tts-adapt
KOKORO_REPO = "hexgrad/Kokoro-82M"
KOKORO_FILES = ("kokoro-v1_0.pth", "config.json")

OPENSLR_60 = (
    "https://www.openslr.org/resources/60/",
    "https://us.openslr.org/resources/60/",
    "https://openslr.elda.org/resources/60/",
)
LIBRITTS_SHA256 = {
    "dev-clean": "da0864e1bd26debed35da8a869dd5c04dfc27682921936de7cff9c8a254dbe1a",
    "dev-other": "d413eda26f3a152ac7c9cf3658ef85504dfb1b625296e5fa83727f5186cca79c",
    "test-clean": "234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5",
    "test-other": "33a5342094f3bba7ccc2e0500b9e72d558f72eb99328ac8debe1d9080402f10d",
    "train-clean-100": "c5608bf1ef74bb621935382b8399c5cdd51cd3ee47cec51f00f885a64c6c7f6b",
    "train-clean-360": "ce7cff44dcac46009d18379f37ef36551123a1dc4e5c8e4eb73ae57260de4886",
    "train-other-500": "e35f7e34deeb2e2bdfe4403d88c8fdd5fbf64865cae41f027a185a6965f0a5df",
}


@dataclass(frozen=True)
class ArchiveSpec:
    """Where an archive comes from (mirrors tried in order) and what it must look like."""

    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    into: str | None = None  # extract into this sub-folder (for archives without a top-level folder)
    top: str | None = None  # the folder a reader should be pointed at, relative to the destination
    fname: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.fname or Path(urlparse(self.urls[0]).path).name


def libritts_spec(subset: str) -> ArchiveSpec:
    if subset not in LIBRITTS_SHA256:
        raise ValueError(f"unknown LibriTTS subset {subset!r}; choose from {', '.join(LIBRITTS_SHA256)}")
    return ArchiveSpec(
        tuple(m + f"{subset}.tar.gz" for m in OPENSLR_60), LIBRITTS_SHA256[subset], top="LibriTTS"
    )


VCTK = ArchiveSpec(
    (
        "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip",
        "https://datashare.is.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip",
    ),
    "f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c",
    into="VCTK-Corpus-0.92",
    top="VCTK-Corpus-0.92",
)
LJSPEECH = ArchiveSpec(
    ("https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2",),
    "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5",
    top="LJSpeech-1.1",
)


# ---------------------------------------------------------------------------------------------- transfer


class IncompleteDownloadError(requests.exceptions.RequestException):
    """Fewer bytes arrived than announced; pooch retries, and the next attempt resumes."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class ResumableDownloader:
    """A pooch downloader that keeps a ``<name>.part`` file between attempts and resumes it with an
    HTTP Range request; the received byte count must match what the server announced (and ``size``)."""

    def __init__(
        self, part: Path, size: int | None = None, timeout: float = 60.0, progress: bool = True
    ) -> None:
        self.part = Path(part)
        self.size = size
        self.timeout = timeout
        self.progress = progress

    def __call__(self, url: str, output_file, pooch=None, check_only: bool = False):
        from ..utils.progress import progress_bar as tqdm

        if check_only:
            r = requests.head(url, allow_redirects=True, timeout=self.timeout)
            return r.status_code == 200
        self.part.parent.mkdir(parents=True, exist_ok=True)
        start = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=True) as r:
            if r.status_code == 416 and start:
                m = re.search(r"/(\d+)", r.headers.get("Content-Range", ""))
                if m and int(m.group(1)) == start:
                    total = start  # the partial file is already complete
                    r.close()
                    return self._finish(output_file, total)
                self.part.unlink()
                raise IncompleteDownloadError(f"{url}: the server refused to resume; starting again")
            r.raise_for_status()
            mode, total = "wb", None
            if start and r.status_code == 206:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != start:
                    self.part.unlink()
                    raise IncompleteDownloadError(
                        f"{url}: unexpected Content-Range {r.headers.get('Content-Range')!r}"
                    )
                mode, total = "ab", (int(m.group(3)) if m.group(3) != "*" else None)
            else:
                start = 0
                if r.headers.get("Content-Length", "").isdigit() and "Content-Encoding" not in r.headers:
                    total = int(r.headers["Content-Length"])
            if self.size is not None and total is not None and total != self.size:
                raise ValueError(f"{url}: server announces {total} bytes, expected {self.size}")
            with (
                open(self.part, mode) as f,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    desc=self.part.name[:-5],
                    disable=not self.progress,
                ) as bar,
            ):
                for block in r.iter_content(chunk_size=1 << 16):  # small: a dropped link loses little
                    f.write(block)
                    bar.update(len(block))
        return self._finish(output_file, total)

    def _finish(self, output_file, total: int | None) -> None:
        got = self.part.stat().st_size
        if total is not None and got != total:
            raise IncompleteDownloadError(f"{self.part.name}: received {got} of {total} bytes")
        if self.size is not None and got != self.size:
            self.part.unlink()
            raise ValueError(f"{self.part.name}: received {got} bytes, expected {self.size}")
        os.replace(self.part, output_file)


def fetch_archive(
    spec: ArchiveSpec, folder: Path, retries: int = 3, timeout: float = 60.0, progress: bool = True
) -> Path:
    """Download ``spec`` into ``folder`` (resuming, retrying, trying mirrors); return the file."""
    import pooch

    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in spec.urls:
        store = pooch.create(
            path=folder,
            base_url="",
            registry={spec.name: spec.sha256},
            urls={spec.name: url},
            retry_if_failed=retries,
        )
        downloader = ResumableDownloader(folder / f"{spec.name}.part", spec.size, timeout, progress)
        try:
            return Path(store.fetch(spec.name, downloader=downloader))
        except (requests.exceptions.RequestException, ValueError, OSError) as e:
            log.warning("download from %s failed: %s", url, e)
            errors.append(f"{url}: {e}")
    hint = " (if the publisher re-released the file, pass its new sha256)" if spec.sha256 else ""
    raise RuntimeError(f"could not download {spec.name}{hint}:\n  " + "\n  ".join(errors))


# ---------------------------------------------------------------------------------------------- archives


def _manifest(dest: Path) -> dict:
    p = dest / MANIFEST
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def download_archive(
    spec: ArchiveSpec | str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    extract: bool = True,
    keep_archive: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Fetch, verify and (optionally) safely extract one archive into ``dest``.

    ``spec`` is an :class:`ArchiveSpec` or a URL (then ``sha256``/``size`` apply). Returns the folder
    a reader should use (``dest/<top>`` when known, else ``dest``), or the archive with
    ``extract=False``. A download recorded as complete in the destination's manifest is not repeated.
    """
    if isinstance(spec, str):
        spec = ArchiveSpec((spec,), sha256, size)
    elif sha256 or size:
        spec = ArchiveSpec(
            spec.urls, sha256 or spec.sha256, size or spec.size, spec.into, spec.top, spec.fname
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / spec.top if spec.top else dest
    done = _manifest(dest).get(spec.name)
    if done and done.get("extracted") and all((dest / n).exists() for n in done["extracted"]):
        log.info("%s already downloaded and extracted in %s", spec.name, dest)
        return target
    archive_dir = dest / ARCHIVE_DIR
    path = fetch_archive(spec, archive_dir, retries, timeout, progress)
    try:
        # with a known sha256 pooch has already checked it; hash once more only to record an unknown one
        if spec.sha256 is None:
            digest = verify_file(path, None, spec.size)
        else:
            digest = spec.sha256.lower().removeprefix("sha256:")
            if spec.size is not None and path.stat().st_size != spec.size:
                raise ValueError(f"{path} is {path.stat().st_size} bytes, expected {spec.size}")
    except ValueError as e:
        path.unlink(missing_ok=True)
        raise ValueError(f"{e}; the file was deleted") from e
    record = {
        "urls": list(spec.urls),
        "sha256": digest,
        "size": path.stat().st_size,
        "verified": spec.sha256 is not None,
    }
    if not extract:
        _record(dest, spec.name, record)
        _warn_unverified(spec, digest, dest)
        return path
    try:
        names = safe_extract(path, dest, into=spec.into)
    except UnsafeArchiveError as e:
        _discard(path, archive_dir)  # nothing refused stays behind to be picked up later
        raise UnsafeArchiveError(f"{e}; the archive was deleted and nothing was recorded") from e
    except ValueError as e:
        _discard(path, archive_dir)  # a damaged archive must not be reused by the next run
        raise ValueError(f"{e}; the archive was deleted, run again to download it afresh") from e
    record["extracted"] = names
    _record(dest, spec.name, record)
    _warn_unverified(spec, digest, dest)
    if not keep_archive:
        _discard(path, archive_dir)
    return target


def _discard(path: Path, archive_dir: Path) -> None:
    """Delete a fetched archive, and ``.downloads/`` with it when nothing else is in there."""
    path.unlink(missing_ok=True)
    try:
        archive_dir.rmdir()
    except OSError:
        pass


def _warn_unverified(spec: ArchiveSpec, digest: str, dest: Path) -> None:
    """Called once the hash really is in the manifest, so the message never names a missing record."""
    if spec.sha256 is None:
        log.warning(
            "no published checksum for %s; its sha256 is %s (recorded in %s)",
            spec.name,
            digest,
            dest / MANIFEST,
        )


def _record(dest: Path, name: str, record: dict) -> None:
    manifest = _manifest(dest)
    manifest[name] = record
    write_json(dest / MANIFEST, manifest)


def download_corpus(name: str, dest: str | os.PathLike, subsets: Iterable[str] | None = None, **kw) -> Path:
    """``libritts`` (with ``subsets``), ``vctk`` or ``ljspeech`` into ``dest``; returns the corpus root."""
    if name == "libritts":
        chosen = list(subsets or [])
        if not chosen:
            raise ValueError(
                f"name LibriTTS subsets to download (--subset), from: {', '.join(LIBRITTS_SHA256)}"
            )
        specs = [libritts_spec(s) for s in chosen]
        root = None
        for spec in specs:
            root = download_archive(spec, dest, **kw)
        return root
    if subsets:
        raise ValueError(f"--subset applies to LibriTTS only, not {name}")
    if name == "vctk":
        return download_archive(VCTK, dest, **kw)
    if name == "ljspeech":
        return download_archive(LJSPEECH, dest, **kw)
    raise ValueError(f"unknown corpus {name!r}; choose libritts, vctk or ljspeech")


# ---------------------------------------------------------------------------------------------- checkpoint


def download_checkpoint(
    dest: str | os.PathLike | None = None,
    *,
    repo_id: str = CHECKPOINT_REPO,
    files: Sequence[str] = CHECKPOINT_FILES,
    revision: str | None = None,
    verify: bool = True,
) -> dict[str, Path]:
    """An official checkpoint and its config through the Hugging Face Hub: StyleTTS 2 LibriTTS by
    default, Kokoro-82M with ``repo_id=KOKORO_REPO, files=KOKORO_FILES``.

    Files go to the Hub cache (or ``dest``); ``HF_HUB_OFFLINE=1`` uses what is cached. With
    ``verify``, each file's size and (for large files) sha256 are compared with the Hub's record;
    offline, that comparison is skipped with a log message.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    out = {}
    for f in files:
        try:
            path = Path(hf_hub_download(repo_id, f, revision=revision, local_dir=dest))
        except LocalEntryNotFoundError as e:
            why = (
                "offline mode is on (HF_HUB_OFFLINE)"
                if constants.HF_HUB_OFFLINE
                else "the Hub could not be reached"
            )
            where = dest if dest is not None else "the Hugging Face cache"
            raise FileNotFoundError(
                f"{repo_id}/{f} is not in {where} and {why}; download it once with internet"
            ) from e
        if verify:
            _verify_hub_file(repo_id, f, revision, path)
        out[f] = path
    return out


def _verify_hub_file(repo_id: str, filename: str, revision: str | None, path: Path) -> None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        meta = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision))
    except Exception as e:  # offline mode, no network, or Hub unavailable
        log.info(
            "could not check %s against the Hub (%s); using the local file as is", filename, type(e).__name__
        )
        return
    etag = (meta.etag or "").strip('"').lower()
    sha = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    verify_file(path, sha256=sha, size=meta.size)
    log.info("%s verified (%s bytes%s)", filename, meta.size, ", sha256" if sha else "")
