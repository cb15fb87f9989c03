"""Real audio for the evaluation tests, spoken by espeak-ng once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every single summer morning.",
    "A large green kettle was sitting on the old wooden table.",
    "Please call Stella and ask her to bring these things from the store.",
]
# two clearly different voices: a high female variant and a low male one
VOICE_A = ("en-us+f3", 60, 160)
VOICE_B = ("en-us+m3", 35, 140)


def speak(out: Path, text: str, voice: tuple[str, int, int]) -> Path:
    from tts_adapt.evaluation.audio_io import write_wave
    from tts_adapt.evaluation.systems import espeak_synthesize

    wave, sr = espeak_synthesize(text, *voice)
    write_wave(out, wave, sr)
    return out


@pytest.fixture(scope="session")
def voices(tmp_path_factory) -> dict[str, list[Path]]:
    """``{"A": [4 sentences], "B": [4 sentences]}`` as 22.05 kHz WAV files."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs the espeak-ng program")
    root = tmp_path_factory.mktemp("voices")
    return {
        name: [speak(root / f"{name}{i}.wav", s, v) for i, s in enumerate(SENTENCES)]
        for name, v in (("A", VOICE_A), ("B", VOICE_B))
    }


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """5 espeak-ng speakers x 5 utterances (LibriTTS layout); the last 3 are held-out speakers."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs the espeak-ng program")
    from tts_adapt.data.synthetic import make_corpus

    return make_corpus(
        tmp_path_factory.mktemp("corpus") / "c",
        speakers=5,
        utterances=5,
        seed=3,
        test_speakers=3,
        progress=False,
    )


@pytest.fixture(scope="session")
def eval_dir(tmp_path_factory, synthetic_corpus) -> Path:
    """A finished protocol run: ground truth, an espeak base and an espeak 'adapted' system."""
    from tts_adapt.data import load_corpus
    from tts_adapt.evaluation.protocol import EvalConfig, SystemEntry, run_evaluation
    from tts_adapt.evaluation.systems import make_system
    from tts_adapt.evaluation.testset import build_test_set

    train = load_corpus(synthetic_corpus / "train-synth")
    target_speaker = sorted({u.speaker for u in train})[0]
    held = load_corpus(synthetic_corpus / "test-synth")
    cases = build_test_set(
        train, held, n_target=3, n_heldout_per_speaker=2, seed=0, target_speaker=target_speaker
    )
    entries = [
        SystemEntry("ground_truth", "ground_truth"),
        SystemEntry("base", "base", make_system("espeak:en-us+f3:pitch=60")),
        SystemEntry(
            "adapted",
            "adapted",
            make_system("espeak:en-gb+m3:pitch=40"),
            {"method": "lora", "lambda": 0.5, "trainable_params": 1000},
        ),
    ]
    out = tmp_path_factory.mktemp("eval") / "run"
    run_evaluation(
        entries,
        cases,
        out,
        EvalConfig(metrics=("sim", "mcd", "dnsmos"), heldout_dnsmos=False, n_boot=300),
        progress=False,
    )
    return out
