"""Our LibriTTS-size model has exactly the official state-dict keys, shapes, dtypes and parameter counts."""

from __future__ import annotations

import json

import pytest
import torch

from tts_adapt.models.styletts2 import MODULE_NAMES, build_model


@pytest.fixture(scope="module")
def manifest(fixtures_dir):
    return json.loads((fixtures_dir / "libritts_manifest.json").read_text())


@pytest.fixture(scope="module")
def libritts_model(manifest):
    aux = manifest["aux_configs"]
    config = {
        "model_params": manifest["config"],
        "plbert_model_params": aux["bert"]["AlbertConfig_kwargs"],
        "asr_model_params": aux["text_aligner"]["constructor_kwargs"],
        "jdc_args": aux["pitch_extractor"]["constructor_kwargs"],
    }
    return build_model(config)


def test_every_module_matches_the_manifest(libritts_model, manifest):
    assert list(manifest["modules"]) == list(MODULE_NAMES)
    non_f32 = manifest["non_float32_entries"]
    for name in MODULE_NAMES:
        ours = getattr(libritts_model, name).state_dict()
        theirs = manifest["modules"][name]
        assert list(ours) == list(theirs), f"{name}: key names or order differ"
        for key, shape in theirs.items():
            assert list(ours[key].shape) == shape, f"{name}.{key}"
            expected = non_f32.get(name, {}).get(key, "float32")
            assert str(ours[key].dtype).removeprefix("torch.") == expected, f"{name}.{key} dtype"
        count = sum(p.numel() for p in getattr(libritts_model, name).parameters())
        assert count == manifest["param_counts"][name], name
    assert sum(manifest["param_counts"].values()) == manifest["param_count_total"]


def test_diffusion_aliases_share_storage(libritts_model, manifest):
    sd = libritts_model.diffusion.state_dict()
    for alias, canonical in manifest["aliased_state_dict_keys"]["diffusion"].items():
        assert sd[alias].data_ptr() == sd[canonical].data_ptr(), alias


def test_aux_manifest(fixtures_dir):
    aux = json.loads((fixtures_dir / "aux_manifest.json").read_text())
    from tts_adapt.models.styletts2.aligner import ASRCNN
    from tts_adapt.models.styletts2.jdc import JDCNet
    from tts_adapt.models.styletts2.plbert import PLBert

    built = {
        "text_aligner": ASRCNN(**aux["text_aligner"]["constructor_kwargs"]),
        "pitch_extractor": JDCNet(**aux["pitch_extractor"]["constructor_kwargs"]),
        "plbert": PLBert(aux["plbert"]["AlbertConfig_kwargs"]),
    }
    for name, module in built.items():
        ours = {k: list(v.shape) for k, v in module.state_dict().items()}
        assert ours == aux[name]["keys"], name
        assert sum(p.numel() for p in module.parameters()) == aux[name]["param_count"], name


def test_style_encoders_ignore_max_conv_dim(set_a):
    """tiny_config has max_conv_dim 64 != hidden_dim 512: widths must follow hidden_dim, as officially."""
    from tts_adapt.models.styletts2.config import load_config

    cfg = load_config(set_a / "tiny_config.yml")
    assert cfg["model_params"]["max_conv_dim"] != cfg["model_params"]["hidden_dim"]
    ckpt = torch.load(set_a / "tiny_epochs_2nd.pth", weights_only=True)
    shapes = {k: tuple(v.shape) for k, v in ckpt["net"]["style_encoder"].items()}
    model = build_model(cfg)
    assert {k: tuple(v.shape) for k, v in model.style_encoder.state_dict().items()} == shapes


def test_bundled_libritts_config_builds_the_manifest_model(manifest):
    from tts_adapt.models.styletts2.config import LIBRITTS_CONFIG

    model = build_model(LIBRITTS_CONFIG)
    for name in MODULE_NAMES:
        shapes = {k: list(v.shape) for k, v in getattr(model, name).state_dict().items()}
        assert shapes == manifest["modules"][name], name
