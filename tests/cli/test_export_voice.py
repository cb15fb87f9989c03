"""``export --format voice``: the voice an adapted Kokoro folder learned, alone, in Kokoro's formats.

The expected pack is computed here from the shipped stock pack plus the learned offset (the offset
mode's definition: every row of the start voice shifted by one vector), not read back through the code
under test; the formats are the ones Kokoro's runtimes read: ``.pt`` a float32 ``[510, 1, 256]`` tensor
(hexgrad/Kokoro-82M ``voices/*.pt``), ``.bin`` the same values as raw little-endian float32 (kokoro-js).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tts_adapt.cli import main
from tts_adapt.models.styletts2.config import KOKORO_VOICES
from tts_adapt.models.styletts2.voice_bank import VoiceBank
from tts_adapt.train.artifacts import export_adapted

from ..conftest import kokoro_voice_run


def export_voice(folder, out, *extra: str) -> int:
    return main(["export", "--format", "voice", "--adapted", str(folder), *extra, "--out", str(out)])


@pytest.fixture(scope="module")
def voice_folder(tmp_path_factory):
    bank = VoiceBank.from_file(KOKORO_VOICES)
    learned = bank.add_learned("target", bank.packs()["am_michael"])
    offset = torch.linspace(-0.2, 0.3, learned.offset.numel())
    with torch.no_grad():
        learned.offset.copy_(offset)
    holder = nn.Module()
    holder.voices = bank
    folder = export_adapted(holder, tmp_path_factory.mktemp("run"), "voice", {"name": "Kokoro-82M"}, None, {})
    from safetensors.torch import load_file

    stock = load_file(str(KOKORO_VOICES))["am_michael"].float().reshape(510, 256)
    return folder, (stock + offset).reshape(510, 1, 256)


def test_learned_voice_exports_as_kokoro_reads_it(voice_folder, tmp_path, capsys):
    folder, expected = voice_folder
    assert export_voice(folder, tmp_path / "me.pt") == 0
    pt = torch.load(tmp_path / "me.pt", weights_only=True)
    assert pt.dtype == torch.float32 and pt.shape == (510, 1, 256)
    assert torch.equal(pt, expected)
    assert export_voice(folder, tmp_path / "me.bin") == 0
    raw = np.fromfile(tmp_path / "me.bin", dtype="<f4")
    assert raw.size == 510 * 256 and np.array_equal(raw, expected.numpy().reshape(-1))
    # a stock voice of the folder by name, as shipped
    out = tmp_path / "heart.pt"
    assert export_voice(folder, out, "--voice", "af_heart") == 0
    from safetensors.torch import load_file

    assert torch.equal(torch.load(out, weights_only=True), load_file(str(KOKORO_VOICES))["af_heart"].float())
    assert "target" in capsys.readouterr().out


def test_bad_requests_are_named(voice_folder, tmp_path, capsys):
    folder, _ = voice_folder
    assert export_voice(folder, tmp_path / "x.pt", "--voice", "nobody") != 0
    err = capsys.readouterr().err
    assert "nobody" in err and "af_heart" in err
    assert export_voice(folder, tmp_path / "x.wav") != 0
    assert ".bin, .pt or .safetensors" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_voice(empty, tmp_path / "x.pt") != 0
    assert "voices.safetensors not found" in capsys.readouterr().err


def test_merged_kokoro_export_carries_its_voices(kokoro_paths, tmp_path):
    """``export --adapted`` (pth) of an adapted Kokoro folder writes the voices file its config names
    beside the checkpoint: loaded back as a plain checkpoint, it speaks the learned voice exactly as the
    adapted model does (without the file its config would point at nothing)."""
    from tts_adapt.models.styletts2 import load_official

    folder, model = kokoro_voice_run(kokoro_paths, tmp_path / "run", start="bm_george")
    out = tmp_path / "merged" / "me.pth"
    assert main(["-q", "export", "--adapted", str(folder), "--out", str(out)]) == 0
    assert (out.parent / "voices.safetensors").is_file()
    merged = load_official(out, out.parent / "config.yml").eval()
    expected, _ = model.synthesize("Hi there.", reference="target", seed=1)
    got, _ = merged.synthesize("Hi there.", seed=1)  # the config's default voice: the learned one
    assert np.array_equal(got, expected)
