"""Voice packs: the row for a text length, the file formats Kokoro's runtimes use, blends, the shipped set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tts_adapt.models.styletts2.config import KOKORO_VOICES
from tts_adapt.models.styletts2.voice_packs import (
    VoicePack,
    parse_spec,
    read_bundle,
    resolve_voice,
    write_pack,
)

ENGLISH = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky "
    "am_adam am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa "
    "bf_alice bf_emma bf_isabella bf_lily bm_daniel bm_fable bm_george bm_lewis"
).split()


def pack(seed: int, rows: int = 510) -> VoicePack:
    return VoicePack(torch.randn(rows, 1, 256, generator=torch.Generator().manual_seed(seed)), f"v{seed}")


def test_row_is_the_text_length_minus_one_capped_at_the_last():
    p = VoicePack(torch.arange(5 * 4, dtype=torch.float32).reshape(5, 1, 4))
    assert p.style_for(1).tolist() == [[0, 1, 2, 3]]
    assert p.style_for(3).tolist() == [[8, 9, 10, 11]]
    assert p.style_for(99).tolist() == [[16, 17, 18, 19]]
    assert p.style_for(0).tolist() == [[0, 1, 2, 3]]


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".safetensors"])
def test_formats_round_trip(tmp_path, suffix):
    p = pack(1)
    path = write_pack(p, tmp_path / f"mine{suffix}")
    back = resolve_voice(str(path), None)
    assert torch.equal(back.styles, p.styles)


def test_bin_is_kokoro_js_raw_float32(tmp_path):
    """kokoro-js reads ``voices/*.bin`` as little-endian float32 [510, 1, 256] with nothing else."""
    p = pack(2)
    path = write_pack(p, tmp_path / "v.bin")
    assert path.stat().st_size == 510 * 256 * 4
    raw = np.fromfile(path, dtype="<f4").reshape(510, 1, 256)
    assert np.array_equal(raw[:, 0], p.styles.numpy())
    (tmp_path / "bad.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(ValueError, match="1000 bytes is not a whole number"):
        read_bundle(tmp_path / "bad.bin")


def test_npz_bundle_as_kokoro_onnx_ships_it(tmp_path):
    """kokoro-onnx's ``voices-v1.0.bin`` is a NumPy archive of named packs."""
    a, b = pack(3), pack(4)
    path = tmp_path / "voices-v1.0.bin"
    with open(path, "wb") as f:
        np.savez(f, af_a=a.styles.unsqueeze(1).numpy(), am_b=b.styles.unsqueeze(1).numpy())
    bundle = read_bundle(path)
    assert sorted(bundle) == ["af_a", "am_b"]
    assert torch.equal(bundle["am_b"].styles, b.styles)


def test_blends_are_weighted_sums():
    a, b = pack(5), pack(6)
    bundle = {"a": a, "b": b}
    mix = resolve_voice("a:0.6,b:0.4", bundle)
    assert torch.allclose(mix.styles, 0.6 * a.styles + 0.4 * b.styles)
    even = resolve_voice("a,b", bundle)
    assert torch.allclose(even.styles, 0.5 * a.styles + 0.5 * b.styles)
    assert parse_spec("a:1.3,b:-0.3") == [("a", 1.3), ("b", -0.3)]
    with pytest.raises(ValueError, match="weight to every voice or to none"):
        parse_spec("a:0.5,b")
    with pytest.raises(ValueError, match="unknown voice 'c'.*a, b"):
        resolve_voice("c", bundle)
    with pytest.raises(ValueError, match="not a number"):
        parse_spec("a:lots")


def test_width_is_checked():
    with pytest.raises(ValueError, match="style width 256; this model takes 128"):
        pack(7).check_width(128)
    with pytest.raises(ValueError, match="non-finite"):
        VoicePack(torch.full((2, 256), float("nan")))


def test_shipped_english_voices():
    bundle = read_bundle(KOKORO_VOICES)
    assert sorted(bundle) == sorted(ENGLISH)
    styles = torch.stack([bundle[n].styles for n in ENGLISH])
    assert styles.shape == (28, 510, 256) and torch.isfinite(styles).all()
    # 28 different voices: no two packs alike
    flat = styles.reshape(28, -1)
    dist = torch.cdist(flat, flat) + torch.eye(28) * 1e9
    assert float(dist.min()) > 1.0


def test_default_model_is_kokoro_where_installed(monkeypatch):
    from tts_adapt.models import registry
    from tts_adapt.models.kokoro import parts_installed

    monkeypatch.delenv(registry.ENV_DEFAULT, raising=False)
    assert registry.default_model_name() == ("kokoro" if parts_installed() else "tts-adapt-base")
    monkeypatch.setenv(registry.ENV_DEFAULT, "tts-adapt-base")
    assert registry.default_model_name() == "tts-adapt-base"
    monkeypatch.setenv(registry.ENV_DEFAULT, "nobody")
    with pytest.raises(ValueError, match="TTS_ADAPT_MODEL='nobody'"):
        registry.default_model_name()
