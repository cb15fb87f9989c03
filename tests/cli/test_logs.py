"""What a newcomer's first adaptation prints: no warnings that the smoke recipe's own settings cause.

Run as a separate process with a fresh cache, as the recipe runs each stage, so that once-per-process
messages and Python's warning registry start from nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tts_adapt.cli import main as cli

from ..conftest import REPO

NEVER = (
    "words count mismatch",  # phonemizer, on punctuation and numbers
    "mel filterbank has all zero values",  # torchaudio, on the official 128-band loss
    "punkt",  # NLTK data that cannot be downloaded offline
)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_adapt_with_the_smoke_settings_is_quiet(synthetic_corpus, tmp_path):
    wavs = sorted(synthetic_corpus.rglob("*.wav"))[:2]
    texts = ["Mr. Smith paid $3.50 for the well-known book.", "It's ten o'clock - time to go!"]
    filelist = tmp_path / "train.txt"
    filelist.write_text("".join(f"{w}|{t}|9000\n" for w, t in zip(wavs, texts)), encoding="utf-8")
    ckpt, config = tmp_path / "base.pth", tmp_path / "config.yml"
    args = ["init-model", "--config", "micro", "--frames-per-token", "3", "--out", str(ckpt)]
    assert cli([*args, "--config-out", str(config)]) == 0
    cmd = [sys.executable, "-m", "tts_adapt", "adapt", "--checkpoint", str(ckpt), "--config", str(config)]
    cmd += ["--data", str(filelist), "--method", "lora", "--steps", "1", "--max-len", "100", "--no-slm"]
    cmd += ["--batch-size", "2", "--diff-start", "0"]
    cmd += ["--save-every", "1", "--sample-every", "1", "--device", "cpu", "--out", str(tmp_path / "run")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "TTS_ADAPT_CACHE": str(tmp_path / "cache"),  # espeak-ng really runs
    }
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    for text in NEVER:
        assert text not in log, f"{text!r} in the output:\n{log[-3000:]}"
    assert log.count("max_len 100 frames") == 1, "the short-crop warning is said once"
