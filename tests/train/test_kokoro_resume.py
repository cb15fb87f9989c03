"""Adapting Kokoro-82M resumes after a crash as if it had never stopped: the learned voice pack and the
LoRA weights equal an uninterrupted run's bit for bit (the Kokoro twin of tests/reliability's kill -9
test: the voice bank's learned offset, its own optimiser group and the voice-pack style are state that
the StyleTTS 2 path does not have, and all of it must be checkpointed and restored)."""

from __future__ import annotations

import shutil

import pytest
import torch

from tts_adapt.cli import main
from tts_adapt.train.trainer import Trainer
from tts_adapt.utils.io import load_tensors

pytestmark = pytest.mark.usefixtures("kokoro_paths")


@pytest.fixture(scope="module")
def awb(tmp_path_factory):
    if shutil.which("flite") is None:
        pytest.skip("needs the flite program (Debian package flite)")
    out = tmp_path_factory.mktemp("awb")
    argv = f"-q make-corpus --engine flite --voice awb --utterances 3 --test-utterances 0 --out {out}"
    assert main(argv.split()) == 0
    return out / "train-synth"


def adapt(data, out) -> int:
    argv = f"-q adapt --model kokoro --data {data} --method lora --steps 3 --batch-size 1 --max-len 80"
    argv += f" --save-every 1 --voice-init am_michael --lr 1e-3 --seed 0 --out {out} --device cpu"
    return main(argv.split())


def test_a_crashed_kokoro_run_resumes_bit_for_bit(awb, tmp_path, monkeypatch):
    assert adapt(awb, tmp_path / "straight") == 0
    original = Trainer.train_step

    def dies_at_step_2(self, batches):
        if self.step == 1:
            raise KeyboardInterrupt("simulated kill")
        return original(self, batches)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_2)
    assert adapt(awb, tmp_path / "crash") != 0
    assert not (tmp_path / "crash" / "manifest.json").exists()  # nothing looks finished
    monkeypatch.setattr(Trainer, "train_step", original)
    assert adapt(awb, tmp_path / "crash") == 0
    for name in ("voices.safetensors", "adapter/adapter_model.safetensors"):
        a, _ = load_tensors(tmp_path / "straight" / name)
        b, _ = load_tensors(tmp_path / "crash" / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    learned, _ = load_tensors(tmp_path / "crash" / "voices.safetensors")
    assert not torch.equal(learned["flite-awb"], learned["am_michael"].float())  # the voice moved
