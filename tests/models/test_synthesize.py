"""``StyleTTS2.synthesize`` end to end on the tiny model, and the ``tts-adapt synth`` command."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.cli import main
from tts_adapt.models.styletts2.inference import TRIM_SAMPLES, infer_tokens
from tts_adapt.text import Tokenizer

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
PHONEMES = "hˈaɪ ðɛɹ"


@pytest.fixture(scope="module")
def ref_wav(golden_a):
    return golden_a["ref_wav"].numpy()


def test_length_and_determinism(model_a, ref_wav):
    wave, sr = model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, seed=3)
    again, _ = model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, seed=3)
    other, _ = model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, seed=4)
    assert sr == 24000 and wave.dtype == np.float32 and np.isfinite(wave).all()
    assert np.array_equal(wave, again)
    assert not np.array_equal(wave, other)
    # frames x (2 F0 samples per frame x 300 samples) minus the trimmed click
    ids = torch.tensor([Tokenizer().encode(PHONEMES)])
    torch.manual_seed(3)
    r = infer_tokens(model_a, ids, _ref_s(model_a, ref_wav))
    assert len(wave) == int(r.pred_dur.sum()) * model_a.decoder.samples_per_frame - TRIM_SAMPLES


def _ref_s(model, wav):
    from tts_adapt.models.styletts2.inference import style_from_reference

    return style_from_reference(model, wav)


def test_seed_does_not_leak_into_global_rng(model_a, ref_wav):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_reference_forms_agree(model_a, ref_wav, tmp_path):
    path = tmp_path / "ref.wav"
    sf.write(path, ref_wav, 24000, subtype="FLOAT")
    from_path, _ = model_a.synthesize("", reference=path, phonemes=PHONEMES, seed=1, deterministic=True)
    from_array, _ = model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, seed=1, deterministic=True)
    ref_s = _ref_s(model_a, ref_wav)
    from_style, _ = model_a.synthesize("", reference=ref_s, phonemes=PHONEMES, seed=1, deterministic=True)
    assert np.array_equal(from_path, from_array)
    assert np.array_equal(from_array, from_style)


def test_alpha_beta_zero_ignore_the_sampler(model_a, ref_wav):
    """alpha = beta = 0 keeps the reference style entirely, so the seed no longer matters."""
    a, _ = model_a.synthesize(
        "", reference=ref_wav, phonemes=PHONEMES, alpha=0, beta=0, seed=1, deterministic=True
    )
    b, _ = model_a.synthesize(
        "", reference=ref_wav, phonemes=PHONEMES, alpha=0, beta=0, seed=2, deterministic=True
    )
    assert np.array_equal(a, b)


def test_bad_inputs(model_a, ref_wav):
    with pytest.raises(ValueError, match="empty"):
        model_a.synthesize("   ", reference=ref_wav)
    with pytest.raises(ValueError, match="speed"):
        model_a.synthesize("", reference=ref_wav, phonemes=PHONEMES, speed=0)
    with pytest.raises(ValueError, match="too short"):
        model_a.synthesize("", reference=ref_wav[:12000], phonemes=PHONEMES)
    with pytest.raises(ValueError, match="reference"):
        model_a.synthesize("", reference=None, phonemes=PHONEMES)


@needs_espeak
def test_english_text_end_to_end(model_a, ref_wav):
    wave, sr = model_a.synthesize("Hello there.", reference=ref_wav, seed=0)
    assert wave.ndim == 1 and len(wave) > sr * 0.3 and np.isfinite(wave).all()


@needs_espeak
def test_cli_synth(set_a, ref_wav, tmp_path, capsys):
    ref = tmp_path / "ref.wav"
    sf.write(ref, ref_wav, 24000)
    out = tmp_path / "out" / "hello.wav"
    code = main(
        [
            "synth",
            "--checkpoint",
            str(set_a / "tiny_epochs_2nd.pth"),
            "--config",
            str(set_a / "tiny_config.yml"),
            "--text",
            "Hi.",
            "--reference",
            str(ref),
            "--out",
            str(out),
            "--seed",
            "5",
        ]
    )
    assert code == 0 and out.exists()
    audio, sr = sf.read(out)
    assert sr == 24000 and len(audio) > 1000
    assert "wrote" in capsys.readouterr().out


def test_cli_synth_reports_missing_checkpoint(set_a, tmp_path, capsys):
    code = main(
        [
            "synth",
            "--checkpoint",
            str(tmp_path / "nope.pth"),
            "--config",
            str(set_a / "tiny_config.yml"),
            "--phonemes",
            PHONEMES,
            "--reference",
            "x.wav",
            "--out",
            str(tmp_path / "o.wav"),
        ]
    )
    assert code == 1
    assert "nope.pth" in capsys.readouterr().err


def test_uniform_durations_set_the_speaking_rate():
    from tts_adapt.models.styletts2 import build_model
    from tts_adapt.models.styletts2.config import MICRO_CONFIG
    from tts_adapt.models.styletts2.model import set_uniform_durations

    torch.manual_seed(0)
    model = build_model(MICRO_CONFIG)
    set_uniform_durations(model, 3)
    ids = torch.tensor([Tokenizer().encode(PHONEMES)])
    r = infer_tokens(model, ids, torch.zeros(1, 2 * model.style_dim))
    assert r.pred_dur.tolist() == [3.0] * ids.shape[1]
    with pytest.raises(ValueError, match="frames_per_token"):
        set_uniform_durations(model, 0)


def test_cli_init_model(tmp_path):
    """``init-model`` writes a strict-loading official checkpoint; the seed decides the weights."""
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.models.styletts2.config import MICRO_CONFIG

    def init(name: str, seed: int) -> torch.nn.Module:
        out, cfg = tmp_path / f"{name}.pth", tmp_path / name / "config.yml"
        argv = ["init-model", "--config", "micro", "--out", str(out), "--config-out", str(cfg)]
        assert main([*argv, "--seed", str(seed), "--frames-per-token", "3"]) == 0
        assert cfg.read_text() == MICRO_CONFIG.read_text()
        return load_official(out, cfg)

    a, b, c = init("a", 0), init("b", 0), init("c", 1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    ids = torch.tensor([Tokenizer().encode(PHONEMES)])
    r = infer_tokens(a, ids, torch.zeros(1, 2 * a.style_dim))
    assert r.pred_dur.tolist() == [3.0] * ids.shape[1]


def test_cli_init_model_knows_every_bundled_config(tmp_path):
    """``--config base`` writes the shipped model's architecture with random weights: every tensor of the
    shipped weights file is there, at its shape, with other values."""
    from safetensors.torch import load_file

    from tts_adapt.models.styletts2.default import BASE_WEIGHTS

    out = tmp_path / "base.pth"
    assert main(["init-model", "--config", "base", "--out", str(out)]) == 0
    net = torch.load(out, map_location="cpu", weights_only=True)["net"]
    random = {f"{m}.{k.removeprefix('module.')}": v for m, sd in net.items() for k, v in sd.items()}
    shipped = load_file(str(BASE_WEIGHTS))
    assert {k: random[k].shape for k in shipped if k in random} == {k: v.shape for k, v in shipped.items()}
    assert any(not torch.equal(random[k].float(), v.float()) for k, v in shipped.items())


def test_synth_scales_a_wave_that_would_clip_instead_of_clipping():
    """A peak above full scale is scaled to 0.99 (shape kept: a constant ratio to the input); anything
    within full scale is written as it is."""
    import numpy as np

    from tts_adapt.audio_out import within_full_scale

    loud = np.array([0.5, -2.0, 1.0], dtype=np.float32)
    out, gain = within_full_scale(loud)
    assert gain == 0.99 / 2.0 and np.allclose(out, loud * 0.495) and np.abs(out).max() == np.float32(0.99)
    quiet = np.array([0.25, -1.0], dtype=np.float32)
    assert within_full_scale(quiet)[1] == 1.0 and within_full_scale(quiet)[0] is quiet
