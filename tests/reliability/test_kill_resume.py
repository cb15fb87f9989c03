"""``kill -9`` in the middle of ``tts-adapt adapt``, then the same command again: the run finishes as if
it had never stopped (same adapter weights, bit for bit) and its manifest's final losses cover the
same steps as those of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tts_adapt.models.styletts2 import load_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.train import TrainConfig
from tts_adapt.train.trainer import Trainer
from tts_adapt.utils.io import load_tensors

from ..conftest import REPO

STEPS = 6


def command(base: Path, corpus: Path, out: Path) -> list[str]:
    speaker = sorted(p.name for p in (corpus / "train-synth").iterdir())[0]
    return [sys.executable, "-m", "tts_adapt", "-q", "adapt", "--checkpoint", str(base),
            "--config", str(MICRO_CONFIG), "--data", str(corpus), "--speakers", speaker, "--out", str(out),
            "--method", "lora", "--steps", str(STEPS), "--batch-size", "2", "--diff-start", "0",
            "--max-len", "80", "--save-every", "1",
            "--log-every", "100", "--sample-every", "1000", "--lr", "1e-3", "--no-slm",
            "--device", "cpu"]  # fmt: skip


def environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TTS_ADAPT_TEST_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_final_losses_cover_the_steps_before_a_resume(micro_bases, prepared_synthetic, tmp_path, monkeypatch):
    """In-process twin of the kill -9 test (fast): a crash at step 3 of 4, then a resumed run."""
    items = [it for it in prepared_synthetic.items if it.speaker == prepared_synthetic.items[0].speaker][:2]
    cfg = TrainConfig(method="lora", steps=4, batch_size=2, max_len=80, log_every=100, save_every=1,
                      sample_every=10**6, dropout=False, lr=1e-3, no_slm=True)  # fmt: skip

    def trainer(out):
        return Trainer(load_official(micro_bases[0], MICRO_CONFIG), cfg, items, out, progress=False)

    straight = trainer(tmp_path / "straight").run()
    original = Trainer.train_step

    def dies_at_step_3(self, batches):
        if self.step == 2:
            raise KeyboardInterrupt("simulated kill")
        return original(self, batches)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "crash").run()
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = trainer(tmp_path / "crash").run()
    assert resumed["steps"] == straight["steps"] == 4
    assert resumed["final_losses"] == straight["final_losses"]  # the mean over all 4 steps in both


@pytest.mark.slow
def test_kill_9_then_rerun_equals_an_uninterrupted_run(micro_bases, synthetic_corpus, tmp_path):
    env = environment()
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(command(micro_bases[0], synthetic_corpus, straight), env=env, check=True, timeout=600)

    proc = subprocess.Popen(command(micro_bases[0], synthetic_corpus, killed), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    marker = killed / "checkpoints" / "step-0000002" / "state.json"
    deadline = time.monotonic() + 600
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and marker.exists()
    assert not (killed / "manifest.json").exists()  # killed before the end: nothing looks finished

    subprocess.run(command(micro_bases[0], synthetic_corpus, killed), env=env, check=True, timeout=600)
    a, _ = load_tensors(straight / "adapter" / "adapter_model.safetensors")
    b, _ = load_tensors(killed / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = json.loads((straight / "manifest.json").read_text())["summary"]
    sb = json.loads((killed / "manifest.json").read_text())["summary"]
    assert sa["steps"] == sb["steps"] == STEPS
    assert sa["final_losses"] == sb["final_losses"]  # mean over all 6 steps (--log-every 100) in both
    assert sa["sigma_data"] == sb["sigma_data"]
