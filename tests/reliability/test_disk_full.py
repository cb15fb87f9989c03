"""A full disk is a one-line error naming the folder and the space needed, and leaves nothing that looks
finished: tested with a writer that fails the way safetensors does on ENOSPC, and on a real 1 MB tmpfs
(skipped where mounting is not allowed)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors import SafetensorError

from tts_adapt.cli import main
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.utils.io import DiskFullError, save_tensors

# what safetensors raises when the disk fills up (its Rust I/O error, os error 28)
ENOSPC_TEXT = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)


def fail_writes(monkeypatch, match: str, error: Exception | None = None) -> None:
    """Make safetensors' writer fail (after writing a few bytes) for files whose name contains ``match``."""
    original = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        if match in os.path.basename(str(filename)):
            Path(filename).write_bytes(b"partial")
            raise error or SafetensorError(ENOSPC_TEXT)
        return original(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


def one_line_error(capsys) -> str:
    """The CLI's error line (a progress bar may share the terminal line, so split on carriage returns)."""
    text = capsys.readouterr().err.replace("\r", "\n")
    err = [ln for ln in text.splitlines() if ln.startswith("tts-adapt ") and ": error: " in ln]
    assert len(err) == 1, text[-2000:]
    assert "Traceback" not in text
    return err[0]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("error", [None, OSError(errno.ENOSPC, "No space left on device")])
def test_save_tensors_on_a_full_disk(monkeypatch, tmp_path, error):
    fail_writes(monkeypatch, "big", error)
    with pytest.raises(DiskFullError) as info:
        save_tensors(tmp_path / "out" / "big.safetensors", {"w": torch.zeros(1000, 250)})
    message = str(info.value)
    assert str(tmp_path / "out") in message and "needs about 1.0 MB" in message
    assert files_under(tmp_path / "out") == []  # no temporary file, no final file


def adapt_argv(micro_bases, synthetic_corpus, out: Path) -> list[str]:
    speaker = sorted(p.name for p in (synthetic_corpus / "train-synth").iterdir())[0]
    return ["adapt", "--checkpoint", str(micro_bases[0]), "--config", str(MICRO_CONFIG),
            "--data", str(synthetic_corpus), "--speakers", speaker, "--out", str(out), "--method", "lora",
            "--steps", "2", "--batch-size", "2", "--diff-start", "0", "--max-len", "80", "--save-every", "1",
            "--sample-every", "100",
            "--no-dropout", "--no-slm", "--device", "cpu"]  # fmt: skip


def test_adapt_checkpoint_on_a_full_disk(micro_bases, synthetic_corpus, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    fail_writes(monkeypatch, "optimizer")  # the second file of a checkpoint folder
    assert main(adapt_argv(micro_bases, synthetic_corpus, out)) == 1
    line = one_line_error(capsys)
    assert f"no space left on device in {out / 'checkpoints'}" in line and "needs about" in line, line
    assert not list((out / "checkpoints").glob("*step-*")) and not (out / "manifest.json").exists()


def test_adapt_export_on_a_full_disk_then_rerun(micro_bases, synthetic_corpus, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    fail_writes(monkeypatch, "adapter_model")
    assert main(adapt_argv(micro_bases, synthetic_corpus, out)) == 1
    line = one_line_error(capsys)
    assert f"no space left on device in {out / 'adapter'}" in line and "needs about" in line, line
    assert not (out / "manifest.json").exists()  # the folder does not look finished
    assert not (out / "adapter" / "adapter_model.safetensors").exists()
    monkeypatch.undo()  # space freed: the rerun only exports (the last checkpoint holds every step)
    assert main(adapt_argv(micro_bases, synthetic_corpus, out)) == 0
    assert (out / "manifest.json").exists() and (out / "adapter" / "adapter_model.safetensors").exists()


def test_curvature_partial_save_on_a_full_disk(micro_bases, synthetic_corpus, tmp_path, monkeypatch, capsys):
    out = tmp_path / "curv" / "diag.safetensors"
    fail_writes(monkeypatch, ".partial")
    argv = ["curvature", "--checkpoint", str(micro_bases[0]), "--config", str(MICRO_CONFIG),
            "--data", str(synthetic_corpus), "--method", "diag", "--objective", "text",
            "--max-utterances", "4", "--max-batch-size", "2", "--checkpoint-every", "1",
            "--out", str(out), "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 1
    line = one_line_error(capsys)
    assert f"no space left on device in {out.parent}" in line and "needs about" in line, line
    assert [f for f in files_under(out.parent) if "report" not in f] == []


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "1m"):
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, timeout=20)


def test_real_full_disk_tmpfs(adapted_folder, micro_bases, tmp_path, capsys):
    with small_tmpfs(tmp_path / "small") as small:
        with pytest.raises(DiskFullError, match=f"in {small}: writing big.safetensors needs about 2.0 MB"):
            save_tensors(small / "big.safetensors", {"w": torch.zeros(500_000)})
        assert files_under(small) == []
        # export: torch.save of the merged micro model (about 30 MB) into 1 MB
        argv = ["export", "--adapted", str(adapted_folder), "--checkpoint", str(micro_bases[0]),
                "--out", str(small / "merged.pth")]  # fmt: skip
        assert main(argv) == 1
        line = one_line_error(capsys)
        assert f"no space left on device in {small}" in line and "needs about" in line, line
        assert files_under(small) == []
