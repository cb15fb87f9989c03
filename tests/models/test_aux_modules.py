"""Text aligner, pitch extractor and discriminators against the official layouts and golden outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from tts_adapt.models.styletts2.aligner import ASRCNN, MFCC
from tts_adapt.models.styletts2.discriminators import (
    DiscriminatorP,
    MultiPeriodDiscriminator,
    MultiResSpecDiscriminator,
    SpecDiscriminator,
    WavLMDiscriminator,
)
from tts_adapt.models.styletts2.jdc import JDCNet

ALIGNER_ATOL = 1e-4
F0_ATOL = 1e-4


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def set_a(fixtures_dir: Path) -> dict:
    folder = fixtures_dir / "checkpoint_set"
    config = yaml.safe_load((folder / "tiny_config.yml").read_text())
    net = torch.load(folder / "tiny_epochs_2nd.pth", map_location="cpu", weights_only=True)["net"]
    golden = torch.load(folder / "tiny_golden.pt", map_location="cpu", weights_only=True)
    return {"config": config, "net": net, "golden": golden}


@pytest.fixture(scope="module")
def set_b(fixtures_dir: Path) -> dict:
    folder = fixtures_dir / "fill_set"
    spec = importlib.util.spec_from_file_location("styletts2_fixture_fill", folder / "fill.py")
    fill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fill)
    return {
        "config": yaml.safe_load((folder / "tiny_config.yml").read_text()),
        "manifest": json.loads((folder / "tiny_manifest.json").read_text()),
        "golden": torch.load(folder / "tiny_golden.pt", map_location="cpu", weights_only=True),
        "fill": fill.fill_state_dict,
    }


@pytest.fixture(scope="module")
def libritts_manifest(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "libritts_manifest.json").read_text())


@pytest.fixture(scope="module")
def aux_manifest(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "aux_manifest.json").read_text())


@pytest.fixture(scope="module")
def aligner_a(set_a) -> ASRCNN:
    model = ASRCNN(**set_a["config"]["asr_model_params"])
    model.load_state_dict(set_a["net"]["text_aligner"], strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def jdc_a(set_a) -> JDCNet:
    model = JDCNet(**set_a["config"]["jdc_args"])
    model.load_state_dict(set_a["net"]["pitch_extractor"], strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def discriminators_a(set_a) -> dict:
    """The tiny checkpoint's mpd (41 M parameters, built once), msd and wd, loaded strictly."""
    slm = set_a["config"]["model_params"]["slm"]
    mods = {
        "mpd": MultiPeriodDiscriminator(),
        "msd": MultiResSpecDiscriminator(),
        "wd": WavLMDiscriminator(slm["hidden"], slm["nlayers"], slm["initial_channel"]),
    }
    for name, mod in mods.items():
        mod.load_state_dict(set_a["net"][name], strict=True)
        mod.eval()
    return mods


def _layout(module: torch.nn.Module) -> dict:
    return {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in module.state_dict().items()}


def _assert_manifest(module: torch.nn.Module, shapes: dict, non_float32: dict) -> None:
    layout = _layout(module)
    assert list(layout) == list(shapes), "state-dict keys (and their order) differ from the official ones"
    assert {k: s for k, (s, _) in layout.items()} == {k: list(s) for k, s in shapes.items()}
    assert {k: d for k, (_, d) in layout.items() if d != "float32"} == non_float32


# ---------------------------------------------------------------- layouts
def test_aligner_and_jdc_match_official_manifests(aux_manifest, libritts_manifest):
    for name, cls in (("text_aligner", ASRCNN), ("pitch_extractor", JDCNet)):
        entry = aux_manifest[name]
        module = cls(**entry["constructor_kwargs"])
        _assert_manifest(module, entry["keys"], entry["non_float32_entries"])
        assert sum(p.numel() for p in module.parameters()) == entry["param_count"]
        kwargs = libritts_manifest["aux_configs"][name]["constructor_kwargs"]
        assert kwargs == entry["constructor_kwargs"]
        _assert_manifest(
            module, libritts_manifest["modules"][name], libritts_manifest["non_float32_entries"].get(name, {})
        )


def test_discriminators_match_libritts_manifest(libritts_manifest):
    slm = libritts_manifest["config"]["slm"]
    mods = {
        "msd": MultiResSpecDiscriminator(),
        "wd": WavLMDiscriminator(slm["hidden"], slm["nlayers"], slm["initial_channel"]),
    }
    for name, module in mods.items():
        _assert_manifest(module, libritts_manifest["modules"][name], {})
        assert sum(p.numel() for p in module.parameters()) == libritts_manifest["param_counts"][name]
    assert WavLMDiscriminator().state_dict()["pre.weight_v"].shape == (64, 768 * 13, 1)


def test_mpd_matches_manifest(discriminators_a, libritts_manifest):
    # mpd has no config: the tiny checkpoint's mpd is the LibriTTS one
    mpd = discriminators_a["mpd"]
    _assert_manifest(mpd, libritts_manifest["modules"]["mpd"], {})
    assert sum(p.numel() for p in mpd.parameters()) == libritts_manifest["param_counts"]["mpd"]


def test_fill_set_layouts(set_b, discriminators_a):
    cfg = set_b["config"]
    slm = cfg["model_params"]["slm"]
    mods = {
        "text_aligner": ASRCNN(**cfg["asr_model_params"]),
        "pitch_extractor": JDCNet(**cfg["jdc_args"]),
        "mpd": discriminators_a["mpd"],
        "msd": MultiResSpecDiscriminator(),
        "wd": WavLMDiscriminator(slm["hidden"], slm["nlayers"], slm["initial_channel"]),
    }
    for name, module in mods.items():
        expected = set_b["manifest"][name]
        assert _layout(module) == {k: (list(s), d) for k, (s, d) in expected.items()}, name


def test_discriminator_keys_are_old_style(discriminators_a):
    for name, module in discriminators_a.items():
        keys = list(module.state_dict())
        assert not any("parametrizations" in k for k in keys), name
        convs = {k.rsplit(".", 1)[0] for k in keys}
        for conv in convs:
            assert {f"{conv}.weight_g", f"{conv}.weight_v", f"{conv}.bias"} <= set(keys), conv
            assert f"{conv}.weight" not in keys
    spectral = SpecDiscriminator(use_spectral_norm=True).state_dict()
    assert {"out.weight_orig", "out.weight_u", "out.weight_v", "out.bias"} == {
        k for k in spectral if k.startswith("out.")
    }
    assert "window" not in SpecDiscriminator().state_dict()


# ---------------------------------------------------------------- aligner
def test_mfcc_is_torchaudio_orthonormal_dct(set_a):
    import torchaudio.functional as AF

    dct = MFCC().dct_mat
    assert torch.equal(dct, AF.create_dct(40, 80, "ortho"))
    assert torch.equal(dct, set_a["net"]["text_aligner"]["to_mfcc.dct_mat"])
    torch.testing.assert_close(dct.t() @ dct, torch.eye(40), atol=1e-5, rtol=0)
    mel = torch.randn(2, 80, 7)
    torch.testing.assert_close(MFCC()(mel[0]), MFCC()(mel)[0])


def test_aligner_golden_set_a(aligner_a, set_a):
    g = set_a["golden"]
    aligner_a.token_mask_prob = 0.0
    with torch.no_grad():
        ctc = aligner_a(g["aligner_mel"])
        ctc2, s2s, attn = aligner_a(g["aligner_mel"], g["aligner_mask"], g["tokens"])
    torch.testing.assert_close(ctc, g["aligner_ctc_logits"], atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(ctc2, g["aligner_ctc_logits_with_text"], atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(s2s, g["aligner_s2s_logits"], atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(attn, g["aligner_s2s_attn"], atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(attn.sum(-1), torch.ones(1, 24))


def test_aligner_default_masking_with_rand_ones_matches_golden(aligner_a, set_a, monkeypatch):
    """Official default (10 % token masking) with ``torch.rand`` returning ones, as the golden run did."""
    g = set_a["golden"]
    aligner_a.token_mask_prob = 0.1
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.ones(*shape, **kw))
    with torch.no_grad():
        _, s2s, attn = aligner_a(g["aligner_mel"], g["aligner_mask"], g["tokens"])
    torch.testing.assert_close(s2s, g["aligner_s2s_logits"], atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(attn, g["aligner_s2s_attn"], atol=ALIGNER_ATOL, rtol=0)


def test_aligner_token_masking_switch(aligner_a, set_a):
    g = set_a["golden"]
    tokens = torch.arange(4, 104).view(2, 50)
    aligner_a.token_mask_prob = 0.1
    torch.manual_seed(0)
    masked = aligner_a.asr_s2s.mask_tokens(tokens)
    torch.manual_seed(0)
    hit = torch.rand(tokens.shape) < 0.1
    assert hit.any() and not hit.all()
    assert torch.equal(masked, tokens.masked_fill(hit, 3))
    # the default masks in eval mode too, so outputs vary; with the switch off they do not and no RNG is used
    with torch.no_grad():
        torch.manual_seed(1)
        first = aligner_a(g["aligner_mel"], g["aligner_mask"], tokens[:1, :20])[1]
        second = aligner_a(g["aligner_mel"], g["aligner_mask"], tokens[:1, :20])[1]
        assert not torch.allclose(first, second)
        aligner_a.token_mask_prob = 0.0
        state = torch.get_rng_state()
        a = aligner_a(g["aligner_mel"], g["aligner_mask"], tokens[:1, :20])[1]
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.equal(a, aligner_a(g["aligner_mel"], g["aligner_mask"], tokens[:1, :20])[1])
    assert ASRCNN(n_token=10, hidden_dim=16, token_embedding_dim=8, token_mask_prob=0).token_mask_prob == 0
    with pytest.raises(ValueError, match="token_mask_prob"):
        aligner_a.token_mask_prob = 1.5


def test_aligner_padding_mask_and_shapes(aligner_a, set_a):
    g = set_a["golden"]
    aligner_a.token_mask_prob = 0.0
    mel = g["aligner_mel"].repeat(2, 1, 1)
    mask = torch.zeros(2, 51, dtype=torch.bool)
    mask[1, 40:] = True
    with torch.no_grad():
        _, s2s, attn = aligner_a(mel, mask, g["tokens"].repeat(2, 1))
        feature = aligner_a.get_feature(mel.unsqueeze(1))
    assert s2s.shape == (2, 24, 178) and attn.shape == (2, 24, 51)
    assert torch.all(attn[1, :, 40:] == 0)
    torch.testing.assert_close(attn[0], g["aligner_s2s_attn"][0], atol=ALIGNER_ATOL, rtol=0)
    assert feature.shape == (2, 16, 51)
    with pytest.raises(ValueError, match="n_mels"):
        aligner_a(mel[0])


def test_aligner_golden_set_b(set_b):
    model = ASRCNN(**set_b["config"]["asr_model_params"])
    model.load_state_dict(set_b["fill"]("text_aligner", model.state_dict()), strict=True)
    g = set_b["golden"]
    with torch.no_grad():
        ctc = model.eval()(g["ref_mel"])
        torch.testing.assert_close(ctc, g["aligner_ctc_logits"], atol=ALIGNER_ATOL, rtol=0)
        ctc64 = model.double()(g["ref_mel"].double())
    assert ctc64.dtype == torch.float64
    torch.testing.assert_close(ctc64, g["aligner_ctc_logits"].double(), atol=ALIGNER_ATOL, rtol=0)


def test_aligner_float64(set_a):
    g = set_a["golden"]
    model = ASRCNN(**set_a["config"]["asr_model_params"], token_mask_prob=0.0)
    model.load_state_dict(set_a["net"]["text_aligner"], strict=True)
    model.double().eval()
    with torch.no_grad():
        ctc, s2s, attn = model(g["aligner_mel"].double(), g["aligner_mask"], g["tokens"])
    assert ctc.dtype == s2s.dtype == attn.dtype == torch.float64
    torch.testing.assert_close(ctc, g["aligner_ctc_logits"].double(), atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(s2s, g["aligner_s2s_logits"].double(), atol=ALIGNER_ATOL, rtol=0)
    torch.testing.assert_close(attn, g["aligner_s2s_attn"].double(), atol=ALIGNER_ATOL, rtol=0)


# ---------------------------------------------------------------- pitch extractor
def test_jdc_golden_set_a(jdc_a, set_a):
    g = set_a["golden"]
    mel = g["ref_mel"].unsqueeze(1)
    with torch.no_grad():
        f0, gan_feature, pooled = jdc_a(mel)
        batch_f0 = jdc_a(mel.repeat(2, 1, 1, 1))[0]
    torch.testing.assert_close(f0, g["pitch_f0"], atol=F0_ATOL, rtol=0)
    assert gan_feature.shape == (1, 256, 10, 103) and pooled.shape == (1, 256, 103, 2)
    torch.testing.assert_close(pooled, F.max_pool2d(gan_feature.transpose(-1, -2), (1, 4)))
    assert batch_f0.shape == (2, 103)
    torch.testing.assert_close(batch_f0[1], g["pitch_f0"], atol=F0_ATOL, rtol=0)
    with pytest.raises(ValueError, match="B, 1, n_mels, T"):
        jdc_a(g["ref_mel"])


def test_jdc_golden_set_b_and_float64(set_b, set_a):
    model = JDCNet(**set_b["config"]["jdc_args"])
    model.load_state_dict(set_b["fill"]("pitch_extractor", model.state_dict()), strict=True)
    g = set_b["golden"]
    with torch.no_grad():
        f0 = model.eval()(g["ref_mel"].unsqueeze(1))[0]
        torch.testing.assert_close(f0, g["pitch_f0"], atol=F0_ATOL, rtol=0)
        f0_64 = model.double()(g["ref_mel"].unsqueeze(1))[0]  # float32 input is cast to the module dtype
    assert f0_64.dtype == torch.float64
    torch.testing.assert_close(f0_64, g["pitch_f0"].double(), atol=F0_ATOL, rtol=0)

    model_a = JDCNet(**set_a["config"]["jdc_args"])
    model_a.load_state_dict(set_a["net"]["pitch_extractor"], strict=True)
    with torch.no_grad():
        f0_a = model_a.double().eval()(set_a["golden"]["ref_mel"].unsqueeze(1).double())[0]
    torch.testing.assert_close(f0_a, set_a["golden"]["pitch_f0"].double(), atol=F0_ATOL, rtol=0)


# ---------------------------------------------------------------- discriminators
def _wn_weight(sd: dict, prefix: str) -> torch.Tensor:
    """Effective weight of an old-style weight-normalised layer: g * v / ||v|| (norm over all but dim 0)."""
    v, g = sd[prefix + ".weight_v"], sd[prefix + ".weight_g"]
    norm = v.reshape(v.shape[0], -1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
    return g * v / norm


def _manual_period(sd: dict, x: torch.Tensor, period: int) -> tuple[torch.Tensor, list]:
    t = x.shape[-1]
    if t % period:
        x = F.pad(x, (0, period - t % period), mode="reflect")
    x = x.view(x.shape[0], 1, -1, period)
    fmap = []
    for i, stride in enumerate((3, 3, 3, 3, 1)):
        w = _wn_weight(sd, f"convs.{i}")
        x = F.leaky_relu(F.conv2d(x, w, sd[f"convs.{i}.bias"], stride=(stride, 1), padding=(2, 0)), 0.1)
        fmap.append(x)
    x = F.conv2d(x, _wn_weight(sd, "conv_post"), sd["conv_post.bias"], padding=(1, 0))
    fmap.append(x)
    return x.flatten(1), fmap


def _numpy_stft_magnitude(y: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    left = (n_fft - win) // 2
    full = np.zeros(n_fft)
    full[left : left + win] = window
    padded = np.pad(y, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] * full for i in range(n_frames)])
    return np.abs(np.fft.rfft(frames, axis=-1))  # [frames, n_fft // 2 + 1]


def _manual_spec(sd: dict, spec_disc: SpecDiscriminator, y: torch.Tensor) -> torch.Tensor:
    mags = [
        _numpy_stft_magnitude(
            row.numpy().astype(np.float64), spec_disc.fft_size, spec_disc.shift_size, spec_disc.win_length
        )
        for row in y[:, 0]
    ]
    x = torch.from_numpy(np.stack(mags)).float().unsqueeze(1)
    for i, (stride, pad) in enumerate([(1, 4), (2, 4), (2, 4), (2, 4), (1, 1)]):
        w = _wn_weight(sd, f"discriminators.{i}")
        x = F.leaky_relu(
            F.conv2d(x, w, sd[f"discriminators.{i}.bias"], stride=(1, stride), padding=(1, pad)), 0.1
        )
    x = F.conv2d(x, _wn_weight(sd, "out"), sd["out.bias"], padding=1)
    return x.flatten(1)


def test_mpd_forward_matches_manual_computation(discriminators_a):
    mpd = discriminators_a["mpd"]
    torch.manual_seed(0)
    y, y_hat = 0.1 * torch.randn(2, 1, 2401), 0.1 * torch.randn(2, 1, 2401)
    with torch.no_grad():
        real, fake, fmap_r, fmap_g = mpd(y, y_hat)
        assert len(real) == len(fake) == len(fmap_r) == len(fmap_g) == 5
        for k, period in enumerate((2, 3, 5, 7, 11)):
            sd = {
                key.removeprefix(f"discriminators.{k}."): v
                for key, v in mpd.state_dict().items()
                if key.startswith(f"discriminators.{k}.")
            }
            expected, expected_fmap = _manual_period(sd, y_hat, period)
            torch.testing.assert_close(fake[k], expected, atol=1e-4, rtol=1e-4)
            assert [f.shape for f in fmap_g[k]] == [f.shape for f in expected_fmap]
            assert len(fmap_r[k]) == 6 and fmap_r[k][0].shape[1:] == (
                32,
                (-(-2401 // period) - 1) // 3 + 1,
                period,
            )


def test_msd_forward_matches_manual_computation(discriminators_a):
    msd = discriminators_a["msd"]
    torch.manual_seed(1)
    y, y_hat = 0.1 * torch.randn(2, 1, 3000), 0.1 * torch.randn(2, 1, 3000)
    with torch.no_grad():
        real, fake, fmap_r, fmap_g = msd(y, y_hat)
        assert len(real) == 3
        for k, sub in enumerate(msd.discriminators):
            sd = {
                key.removeprefix(f"discriminators.{k}."): v
                for key, v in msd.state_dict().items()
                if key.startswith(f"discriminators.{k}.")
            }
            torch.testing.assert_close(real[k], _manual_spec(sd, sub, y), atol=1e-4, rtol=1e-4)
            frames, bins = 1 + 3000 // sub.shift_size, sub.fft_size // 2 + 1
            assert fmap_g[k][0].shape == (2, 32, frames, bins)
            assert len(fmap_g[k]) == 6 and fmap_g[k][-1].shape[1] == 1


def test_wavlm_discriminator_forward(discriminators_a):
    wd = discriminators_a["wd"]
    sd = wd.state_dict()
    torch.manual_seed(2)
    x = torch.randn(2, 64 * 3, 25)
    with torch.no_grad():
        out = wd(x)
        h = F.conv1d(x, _wn_weight(sd, "pre"), sd["pre.bias"])
        for i in range(3):
            h = F.leaky_relu(F.conv1d(h, _wn_weight(sd, f"convs.{i}"), sd[f"convs.{i}.bias"], padding=2), 0.1)
        expected = F.conv1d(h, _wn_weight(sd, "conv_post"), sd["conv_post.bias"], padding=1).flatten(1)
    assert out.shape == (2, 25)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_discriminators_run_in_float64():
    torch.manual_seed(3)
    y, y_hat = 0.1 * torch.randn(1, 1, 1500), 0.1 * torch.randn(1, 1, 1500)
    mods = {"p": DiscriminatorP(3), "s": MultiResSpecDiscriminator(), "w": WavLMDiscriminator(8, 2, 4)}
    with torch.no_grad():
        p32 = mods["p"](y)[0]
        s32 = mods["s"](y, y_hat)[1]
        w32 = mods["w"](torch.randn(1, 16, 9, generator=torch.Generator().manual_seed(0)))
        for m in mods.values():
            m.double()
        p64, fmap = mods["p"](y.double())
        s64 = mods["s"](y.double(), y_hat.double())[1]
        w64 = mods["w"](torch.randn(1, 16, 9, generator=torch.Generator().manual_seed(0)).double())
    assert p64.dtype == fmap[0].dtype == s64[0].dtype == w64.dtype == torch.float64
    torch.testing.assert_close(p64, p32.double(), atol=1e-4, rtol=1e-4)
    for a, b in zip(s64, s32, strict=True):
        torch.testing.assert_close(a, b.double(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(w64, w32.double(), atol=1e-5, rtol=1e-5)
