"""Written artifacts get the mode any program's new files get (0o666/0o777 less the umask), not the
private 0o600/0o700 of the temporary file or folder they are renamed from."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from torch import nn

from tts_adapt.train.state import save_checkpoint
from tts_adapt.utils.io import save_tensors, write_json, write_text


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_checkpoint_folders_follow_the_umask(umask, tmp_path):
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"x": 1})
    save_tensors(tmp_path / "c.safetensors", {"w": torch.ones(2)})
    for name in ("a.txt", "b.json", "c.safetensors"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    model = nn.Linear(2, 2)
    folder = save_checkpoint(tmp_path / "ckpt" / "step-0000001", model, {}, {"step": 1})
    assert mode(folder) == 0o777 & ~umask
    assert mode(folder / "weights.safetensors") == 0o666 & ~umask
    # what a plain open() gives under the same umask: the reference the rule is stated against
    (tmp_path / "plain").write_text("x")
    assert mode(tmp_path / "plain") == mode(tmp_path / "a.txt")
