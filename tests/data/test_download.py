"""Downloads against a local HTTP server on 127.0.0.1 serving archives built here: verification,
resumption, safe extraction (malicious and truncated archives) and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tts_adapt.cli import main
from tts_adapt.data.archive import UnsafeArchiveError, safe_extract
from tts_adapt.data.download import LIBRITTS_SHA256, ArchiveSpec, download_archive, libritts_spec

# ---------------------------------------------------------------------------------------------- server


class Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_once: set[str] = set()  # first GET sends half the body, then drops the connection
    always_short: set[str] = set()  # every GET announces the full length but sends half
    log: list[tuple[str, str | None]] = []
    timeout = 5

    def log_message(self, *args):  # keep test output clean
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool):
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        type(self).log.append((name, rng))
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        payload = body[start:]
        if name in self.cut_once or name in self.always_short:
            self.cut_once.discard(name)
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def server(monkeypatch):
    """A bounded local server on 127.0.0.1 (random port), stopped when the test ends."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    Handler.files, Handler.cut_once, Handler.always_short, Handler.log = {}, set(), set(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------- archives


def tar_bytes(
    members: dict[str, bytes], mode: str = "w:gz", links: dict[str, tuple[bytes, str]] | None = None
):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CORPUS = {"Corpus/a.txt": b"alpha", "Corpus/sub/b.txt": b"beta" * 1000}


def listing(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if ".tts-adapt-downloads" not in p.name
    )


# ---------------------------------------------------------------------------------------------- tests


def test_verified_download_extracts_once(server, tmp_path):
    _, base = server
    data = tar_bytes(CORPUS)
    Handler.files["corpus.tar.gz"] = data
    out = download_archive(base + "corpus.tar.gz", tmp_path / "dest", sha256=sha(data), progress=False)
    assert out == tmp_path / "dest"
    assert (out / "Corpus" / "sub" / "b.txt").read_bytes() == b"beta" * 1000
    assert not (out / ".downloads").exists()  # the archive is removed after extraction
    manifest = json.loads((out / ".tts-adapt-downloads.json").read_text())
    assert manifest["corpus.tar.gz"]["sha256"] == sha(data) and manifest["corpus.tar.gz"]["verified"]
    n = len(Handler.log)
    download_archive(base + "corpus.tar.gz", tmp_path / "dest", sha256=sha(data), progress=False)
    assert len(Handler.log) == n  # already there: no request


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    _, base = server
    Handler.files["corpus.tar.gz"] = tar_bytes(CORPUS)
    with pytest.raises(RuntimeError, match="does not match"):
        download_archive(base + "corpus.tar.gz", tmp_path / "d", sha256="0" * 64, retries=0, progress=False)
    assert listing(tmp_path / "d") == [".downloads"]


def test_interrupted_transfer_resumes(server, tmp_path):
    _, base = server
    data = tar_bytes({"Big/x.bin": bytes(range(256)) * 4000}, mode="w")
    Handler.files["big.tar"] = data
    Handler.cut_once.add("big.tar")
    out = download_archive(base + "big.tar", tmp_path / "d", sha256=sha(data), retries=2, progress=False)
    assert (out / "Big" / "x.bin").read_bytes() == bytes(range(256)) * 4000
    gets = [r for n, r in Handler.log if n == "big.tar"]
    assert gets[0] is None and gets[-1].startswith("bytes=")  # the second attempt resumed...
    assert 0 < int(gets[-1][6:-1]) <= len(data) // 2  # ...from what had arrived


def test_server_that_always_truncates_fails_cleanly(server, tmp_path):
    _, base = server
    Handler.files["short.tar.gz"] = tar_bytes(CORPUS)
    Handler.always_short.add("short.tar.gz")
    with pytest.raises(RuntimeError, match="could not download short.tar.gz"):
        download_archive(base + "short.tar.gz", tmp_path / "d", retries=0, timeout=5, progress=False)
    assert not (tmp_path / "d" / "Corpus").exists()


def test_truncated_archive_is_not_extracted(server, tmp_path):
    _, base = server
    data = tar_bytes({"Corpus/a.bin": bytes(200_000)}, mode="w")
    Handler.files["cut.tar"] = data[: len(data) // 3]
    with pytest.raises(ValueError, match="corrupt or truncated.*deleted"):
        download_archive(base + "cut.tar", tmp_path / "d", progress=False)
    assert listing(tmp_path / "d") == []  # nothing extracted, the damaged archive removed
    Handler.files["cut.tar"] = data  # the server is fixed: a rerun downloads afresh and succeeds
    out = download_archive(base + "cut.tar", tmp_path / "d", progress=False)
    assert (out / "Corpus" / "a.bin").stat().st_size == 200_000


MALICIOUS = {
    "dotdot.tar.gz": tar_bytes({"ok.txt": b"x", "../evil.txt": b"pwned"}),
    "absolute.tar.gz": tar_bytes({"/tmp/evil-absolute.txt": b"pwned"}),
    "symlink.tar.gz": tar_bytes({"ok.txt": b"x"}, links={"link": (tarfile.SYMTYPE, "../../outside")}),
    "abs_symlink.tar.gz": tar_bytes({}, links={"link": (tarfile.SYMTYPE, "/etc/passwd")}),
    "hardlink.tar.gz": tar_bytes({}, links={"hard": (tarfile.LNKTYPE, "../outside.txt")}),
    "dotdot.zip": zip_bytes({"ok.txt": b"x", "../evil.txt": b"pwned"}),
}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_archives_are_refused(server, tmp_path, name):
    _, base = server
    Handler.files[name] = MALICIOUS[name]
    dest = tmp_path / "inner" / "dest"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        download_archive(base + name, dest, progress=False)
    assert listing(dest) == []  # the refused archive is deleted, nothing is recorded
    assert not (tmp_path / "inner" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_safe_links_inside_are_kept(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(
        tar_bytes({"d/file.txt": b"hi"}, mode="w", links={"d/link": (tarfile.SYMTYPE, "file.txt")})
    )
    assert safe_extract(archive, tmp_path / "out") == ["d"]
    assert (tmp_path / "out" / "d" / "link").read_bytes() == b"hi"


def test_subsets_merge_into_one_tree_and_clashes_are_refused(tmp_path):
    notes = b"shared readme"
    a = tmp_path / "a.tar.gz"
    b = tmp_path / "b.tar.gz"
    c = tmp_path / "c.tar.gz"
    a.write_bytes(tar_bytes({"LibriTTS/README.txt": notes, "LibriTTS/dev-clean/1/1/x.wav": b"1"}))
    b.write_bytes(tar_bytes({"LibriTTS/README.txt": notes, "LibriTTS/test-clean/2/2/y.wav": b"2"}))
    c.write_bytes(tar_bytes({"LibriTTS/README.txt": b"a different readme"}))
    dest = tmp_path / "dest"
    safe_extract(a, dest)
    safe_extract(b, dest)
    assert listing(dest / "LibriTTS") == [
        "README.txt", "dev-clean", "dev-clean/1", "dev-clean/1/1", "dev-clean/1/1/x.wav",
        "test-clean", "test-clean/2", "test-clean/2/2", "test-clean/2/2/y.wav",
    ]  # fmt: skip
    with pytest.raises(FileExistsError, match="README.txt"):
        safe_extract(c, dest)
    assert (dest / "LibriTTS" / "README.txt").read_bytes() == notes


def test_zip_without_top_folder_goes_into_a_named_folder(server, tmp_path):
    _, base = server
    data = zip_bytes({"wav48_silence_trimmed/p1/p1_001_mic1.flac": b"f", "txt/p1/p1_001.txt": b"Hi."})
    Handler.files["VCTK-Corpus-0.92.zip"] = data
    urls = (base + "missing.zip", base + "VCTK-Corpus-0.92.zip")
    spec = ArchiveSpec(
        urls, sha(data), into="VCTK-Corpus-0.92", top="VCTK-Corpus-0.92", fname="VCTK-Corpus-0.92.zip"
    )
    out = download_archive(spec, tmp_path / "d", progress=False, retries=0)  # the first mirror 404s
    assert out == tmp_path / "d" / "VCTK-Corpus-0.92"
    assert (out / "txt" / "p1" / "p1_001.txt").read_bytes() == b"Hi."


def test_keep_archive_and_no_extract(server, tmp_path):
    _, base = server
    data = tar_bytes(CORPUS)
    Handler.files["c.tar.gz"] = data
    path = download_archive(base + "c.tar.gz", tmp_path / "d", extract=False, progress=False)
    assert path.read_bytes() == data and not (tmp_path / "d" / "Corpus").exists()
    manifest = json.loads((tmp_path / "d" / ".tts-adapt-downloads.json").read_text())
    assert manifest["c.tar.gz"]["sha256"] == sha(data) and not manifest["c.tar.gz"]["verified"]


def test_cli_download_url(server, tmp_path, capsys):
    _, base = server
    data = tar_bytes(CORPUS)
    Handler.files["c.tar.gz"] = data
    dest = tmp_path / "d"
    assert (
        main(["-q", "download", "--url", base + "c.tar.gz", "--sha256", sha(data), "--dest", str(dest)]) == 0
    )
    assert (dest / "Corpus" / "a.txt").read_bytes() == b"alpha"
    capsys.readouterr()
    args = ["-q", "download", "--url", base + "c.tar.gz", "--sha256", "1" * 64, "--retries", "0"]
    rc = main([*args, "--dest", str(tmp_path / "e")])
    assert rc == 1 and "does not match" in capsys.readouterr().err
    assert main(["-q", "download", "--dest", str(dest)]) == 1
    assert "name what to download" in capsys.readouterr().err
    assert main(["-q", "download", "libritts", "--dest", str(dest)]) == 1
    assert "--subset" in capsys.readouterr().err


def test_known_corpora():
    spec = libritts_spec("train-clean-100")
    assert spec.sha256 == LIBRITTS_SHA256["train-clean-100"] and spec.top == "LibriTTS"
    assert all(u.startswith("https://") and u.endswith("/60/train-clean-100.tar.gz") for u in spec.urls)
    with pytest.raises(ValueError, match="train-clean-360"):
        libritts_spec("train-clean-50")


def test_checkpoint_offline_without_cache_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # the hub reads HF_HUB_OFFLINE once, at import; another test may have imported it already
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    from tts_adapt.data.download import download_checkpoint

    with pytest.raises(FileNotFoundError, match="offline|cache|HF_HUB_OFFLINE"):
        download_checkpoint(tmp_path / "ckpt")


def test_kokoro_checkpoint_offline_without_cache_names_the_file(tmp_path, monkeypatch, capsys):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    from tts_adapt.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["download", "kokoro"]) == 1
    assert "hexgrad/Kokoro-82M/kokoro-v1_0.pth is not in the Hugging Face cache" in capsys.readouterr().err
