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


@pytest.mark.slow
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
    assert "\r" not in log, "progress bars redraw with carriage returns outside a terminal"


def test_progress_outside_a_terminal_is_a_line_per_tenth():
    """37 steps read into a file: 0 %, each further tenth, and the end; no carriage return."""
    import io

    from tts_adapt.utils.progress import LineProgress, progress_bar

    buf = io.StringIO()
    bar = progress_bar(total=37, desc="aligning", file=buf, mininterval=0)
    assert isinstance(bar, LineProgress)
    for _ in range(37):
        bar.update(1)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue() and buf.getvalue().endswith("\n")
    shown = [int(line.split("|")[-1].split("/")[0]) for line in lines]
    # the first count in each tenth: ceil(37 * k / 10) for k = 1..9, then the last
    assert shown == [0, 4, 8, 12, 15, 19, 23, 26, 30, 34, 37]


def test_the_smoke_crops_are_not_short_for_the_models_that_use_them():
    """The short-crop warning starts below the crop a model was made with: the shipped model was
    pre-trained on 48 frames, Kokoro's own fine-tuning config crops 100; an official config, 200."""
    from tts_adapt.models.registry import resolve_model
    from tts_adapt.models.styletts2.config import load_config
    from tts_adapt.train.config import TrainConfig, validate
    from tts_adapt.train.resolve import short_crop

    base = load_config(resolve_model("tts-adapt-base", None, None)[1])
    assert short_crop(base) == 48 and short_crop({}) == 200
    assert validate(TrainConfig(method="lora", max_len=100), warn=False, short_crop=short_crop(base)) == []
    assert any("max_len 100" in w for w in validate(TrainConfig(method="lora", max_len=100), warn=False))


def test_every_progress_bar_goes_through_utils_progress():
    """A bar made with tqdm directly redraws with carriage returns in a log file (one line per redraw);
    utils.progress writes plain lines there. Every import of tqdm in the package is read by ast."""
    import ast
    from pathlib import Path

    import tts_adapt

    root = Path(tts_adapt.__file__).parent
    direct = []
    for path in root.rglob("*.py"):
        if path == root / "utils" / "progress.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "tqdm" or n.startswith("tqdm.") for n in names):
                direct.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not direct, f"tqdm imported directly (use tts_adapt.utils.progress.progress_bar): {direct}"
