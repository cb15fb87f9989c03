import numpy as np
import pytest

from tts_adapt.evaluation.systems import StyleTTS2System, Synthesizer, make_system, register_system

from .conftest import needs_espeak


@needs_espeak
def test_espeak_system_is_a_synthesizer():
    s = make_system("espeak:en-us+f3:pitch=60,speed=160", name="e")
    assert isinstance(s, Synthesizer) and s.name == "e"
    wave, sr = s.synthesize("Hello world.", None, seed=0)
    assert sr == 22050 and wave.dtype == np.float32 and 0.3 < len(wave) / sr < 3


def test_registry_accepts_new_kinds():
    class Silent:
        name = "silent"

        def synthesize(self, text, reference, seed):
            return np.zeros(100, dtype=np.float32), 16000

    register_system("silent", lambda args, name, device: Silent())
    assert make_system("silent").synthesize("x", None, 0)[1] == 16000
    register_system("broken", lambda args, name, device: object())
    with pytest.raises(TypeError, match="not a Synthesizer"):
        make_system("broken")


def test_styletts2_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="CHECKPOINT:CONFIG"):
        make_system("styletts2:only-one")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        make_system(f"styletts2:{tmp_path}/a.pth:{tmp_path}/c.yml")
    with pytest.raises(ValueError, match="unknown options"):
        make_system(f"styletts2:{tmp_path}/a.pth:{tmp_path}/c.yml:temperature=2")


@needs_espeak
def test_styletts2_system_on_the_official_format_fixture(fixtures_dir, tmp_path):
    """Our StyleTTS 2 through the adapter: official-format checkpoint (random weights), seeded synthesis."""
    from .conftest import VOICE_A, speak

    d = fixtures_dir / "checkpoint_set"
    system = make_system(
        f"styletts2:{d / 'tiny_epochs_2nd.pth'}:{d / 'tiny_config.yml'}:diffusion_steps=2", name="tiny"
    )
    assert isinstance(system, StyleTTS2System) and system.name == "tiny"
    ref = speak(tmp_path / "ref.wav", "A short reference sentence.", VOICE_A)
    a, sr = system.synthesize("Hi.", ref, seed=3)
    b, _ = system.synthesize("Hi.", ref, seed=3)
    assert sr == 24000 and a.ndim == 1 and a.size > 0 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@needs_espeak
def test_trainer_output_folder_through_the_protocol(synthetic_corpus, tmp_path):
    """``tts-adapt adapt`` output as an ``adapted:`` system beside its base model, end to end."""
    import dataclasses
    import json

    import torch

    from tts_adapt.cli import main
    from tts_adapt.data import load_corpus
    from tts_adapt.evaluation.protocol import EvalConfig, SystemEntry, run_evaluation
    from tts_adapt.evaluation.testset import build_test_set
    from tts_adapt.models.styletts2 import build_model, save_official
    from tts_adapt.models.styletts2.config import MICRO_CONFIG

    torch.manual_seed(0)
    ckpt = tmp_path / "micro.pth"
    save_official(build_model(MICRO_CONFIG), ckpt)
    train = load_corpus(synthetic_corpus / "train-synth")
    spk = sorted({u.speaker for u in train})[0]
    run = tmp_path / "run"
    data = str(synthetic_corpus / "train-synth")
    argv = ["-q", "adapt", "--checkpoint", str(ckpt), "--config", str(MICRO_CONFIG), "--data", data]
    argv += ["--speakers", spk, "--out", str(run), "--method", "lora+prior", "--curvature", "l2sp"]
    argv += [
        "--lambda",
        "100",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--diff-start",
        "0",
        "--max-len",
        "80",
        "--sample-every",
        "1000",
        "--device",
        "cpu",
        "--no-slm",
    ]
    assert main(argv) == 0
    adapted = make_system(f"adapted:{run}:diffusion_steps=2", name="lora")
    assert adapted.info["method"] == "lora+prior" and adapted.info["lambda"] == 100.0
    assert adapted.info["trainable_params"] > 0
    base = make_system(f"styletts2:{ckpt}:{MICRO_CONFIG}:diffusion_steps=2", name="base")
    held = load_corpus(synthetic_corpus / "test-synth")
    cases = build_test_set(None, held, n_heldout_per_speaker=2, seed=0)
    # two short cases of one speaker (the random micro model is slow): a speaker's similarity profile
    # leaves the case's own prompt out, so it needs the second recording
    cases = [dataclasses.replace(c, text="Hi.") for c in cases if c.speaker == cases[0].speaker][:2]
    entries = [SystemEntry("base", "base", base), SystemEntry("lora", "adapted", adapted, adapted.info)]
    out = tmp_path / "eval"
    run_evaluation(entries, cases, out, EvalConfig(metrics=("sim",), n_boot=100), progress=False)
    agg = json.loads((out / "aggregates.json").read_text())
    assert agg["systems"]["lora"]["info"]["lambda"] == 100.0
    assert "sim" in agg["systems"]["lora"]["retention"]
    assert len(list((out / "audio").rglob("*.wav"))) == 2 * len(cases)


def test_a_voice_method_run_reports_the_voice_values_it_trained():
    """The report's trainable-parameter column: a ``voice`` run trained the 256 values of its voice pack
    (manifest ``voice_trainable``), not nothing; LoRA counts its adapters plus the voice."""
    from tts_adapt.evaluation.systems import _trained_count

    assert _trained_count({"adapted_trainable": 0, "voice_trainable": 256}) == 256
    assert _trained_count({"adapted_trainable": 1_201_408, "voice_trainable": 256}) == 1_201_664
    assert _trained_count({"adapted_trainable": 77}) == 77  # a model without voice packs
    assert _trained_count({}) is None
