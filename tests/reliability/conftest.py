"""Fixtures for the reliability suite: two different micro bases, an adapted folder, a damaged corpus.

Everything is tiny (the micro StyleTTS 2, one training step, tone "speech") so that the suite checks
behaviour under bad input, damage, kills and full disks in seconds, not model quality.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tts_adapt.models.styletts2 import build_model, save_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG

from ..data.helpers import tone, write_audio, write_utt


@pytest.fixture(scope="session")
def micro_bases(tmp_path_factory) -> tuple[Path, Path]:
    """``(seed-0 base, seed-1 base)``: same architecture, different random weights (init-model --seed)."""
    root = tmp_path_factory.mktemp("bases")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(save_official(build_model(MICRO_CONFIG), root / f"seed{seed}" / "base.pth"))
    return paths[0], paths[1]


@pytest.fixture(scope="session")
def adapted_folder(micro_bases, prepared_synthetic, tmp_path_factory) -> Path:
    """A LoRA folder adapted (one step) from the seed-0 base, with the base hashes in its manifest."""
    from tts_adapt.train import TrainConfig, run_adaptation

    items = [it for it in prepared_synthetic.items if it.speaker == prepared_synthetic.items[0].speaker][:2]
    cfg = TrainConfig(
        method="lora",
        steps=1,
        max_len=80,
        batch_size=2,
        save_every=100,
        sample_every=100,
        dropout=False,
        no_slm=True,
    )
    out = tmp_path_factory.mktemp("adapted") / "lora"
    return run_adaptation(micro_bases[0], MICRO_CONFIG, items, cfg, out, progress=False)


@pytest.fixture(scope="session")
def reference_wav(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("ref") / "ref.wav", tone(1.5))


#: What each file of :func:`damaged_corpus` is and why it must be left out (None: it is used).
DAMAGED = {
    "good1": None,
    "good2": None,
    "good3": None,
    "no_text": "missing_transcript",
    "empty_text": "empty_transcript",
    "latin1_text": "missing_transcript",  # not UTF-8
    "too_long": "too_long",
    "too_short": "too_short",
    "emoji": "unsupported_text",
    "cjk": "unsupported_text",
    "silent": "silent",
}


@pytest.fixture
def damaged_corpus(tmp_path) -> Path:
    """A folder corpus (wav + same-name txt) of 11 files, 8 of them unusable for a known reason.

    Durations suit the curvature defaults (1.1 to 30 s) once ``--max-seconds 3`` is given.
    """
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path / "voice"
    for i, name in enumerate(("good1", "good2", "good3")):
        write_utt(root / f"{name}.wav", "Hello there, how are you?", seconds=1.6 + 0.1 * i, seed=i)
    write_utt(root / "no_text.wav", None, seconds=1.5)
    write_utt(root / "empty_text.wav", "  \n", seconds=1.5)
    write_audio(root / "latin1_text.wav", tone(1.5))
    (root / "latin1_text.txt").write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    write_utt(root / "too_long.wav", "This one goes on for far too long.", seconds=4.0)
    write_utt(root / "too_short.wav", "Hi.", seconds=0.6)
    write_utt(root / "emoji.wav", "I love it \U0001f600", seconds=1.5)
    write_utt(root / "cjk.wav", "\u4f60\u597d", seconds=1.5)
    write_audio(root / "silent.wav", tone(1.5) * 0.0)
    (root / "silent.txt").write_text("Nothing to hear.", encoding="utf-8")
    return root
