"""LoRA through peft on Linear, dilated weight-normed Conv1d, LSTM and aliased modules; merging; I/O."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer
from safetensors import safe_open
from torch import nn

from tts_adapt.adapters import (
    aliases,
    apply_lora,
    count_parameters,
    delta_factors,
    dense_delta,
    load_adapted,
    load_adapter,
    lora_layers,
    merge_lora,
    resolve_targets,
    save_adapter,
)
from tts_adapt.adapters.merge import effective_weight

from .toys import make_toy, randomize_lora

ALL = ("linear", "conv1d", "lstm")
X = torch.randn(2, 9, 5, generator=torch.Generator().manual_seed(5))


def adapted(rank: int = 2, alpha: float = 4.0, **kw):
    model = make_toy()
    apply_lora(
        model, targets=["inp", "conv", "block", "lstm", "head"], rank=rank, alpha=alpha, layer_types=ALL, **kw
    )
    return model


def test_resolve_targets_names_containers_globs_and_aliases():
    model = make_toy()
    assert resolve_targets(model) == [
        "block.fc",
        "head",
        "inp",
        "sn",
    ]  # every Linear by default (not a StyleTTS 2)
    assert resolve_targets(model, ["block"]) == ["block.fc"]
    assert resolve_targets(model, ["unet.fc"]) == ["block.fc"]  # an alias resolves to the canonical name
    assert resolve_targets(model, ["*"], layer_types=("conv1d", "lstm")) == ["conv", "lstm"]
    assert resolve_targets(model, ["conv"]) == ["conv"]  # exact names are taken whatever layer_types says
    assert aliases(model)["block"] == ["unet"]
    with pytest.raises(ValueError, match="not a module"):
        resolve_targets(model, ["nope"])
    with pytest.raises(ValueError, match="matches no"):
        resolve_targets(model, ["x*"])
    with pytest.raises(ValueError, match="unknown layer type"):
        resolve_targets(model, None, layer_types=("gru",))


def test_identity_at_init_and_only_lora_trainable():
    model = make_toy()
    ref = model(X)
    apply_lora(model, targets=["inp", "conv", "block", "lstm", "head"], rank=2, alpha=4, layer_types=ALL)
    assert sorted(lora_layers(model)) == ["block.fc", "conv", "head", "inp", "lstm"]
    torch.testing.assert_close(
        model(X), ref, atol=1e-6, rtol=0
    )  # B = 0 (the LSTM path may round differently)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    # the alias sees the same wrapper, and the wrapper's parameters are counted once
    assert model.unet.fc is model.block.fc and isinstance(model.block.fc, LoraLayer)
    counts = count_parameters(model)
    r = 2
    lstm_lora = sum(
        r * (w.shape[0] + w.shape[1]) for n, w in model.lstm.base_layer.named_parameters() if "weight" in n
    )
    expected = r * (5 + 6) + r * (6 * 3 + 6) + r * (6 + 6) + r * (6 + 3) + lstm_lora
    assert counts["lora"] == counts["trainable"] == expected


def test_dilated_weight_normed_conv_lora_is_the_delta_weight():
    """peft builds lora_A without dilation (peft #3697); after our fix the branch is conv(x, ΔW, dilation)."""
    model = adapted()
    randomize_lora(model)
    conv = model.conv
    x = torch.randn(2, 6, 11)
    w = effective_weight(conv.get_base_layer()) + dense_delta(conv)["weight"]
    expected = F.conv1d(x, w, conv.get_base_layer().bias, padding=2, dilation=2)
    torch.testing.assert_close(conv(x), expected, atol=1e-6, rtol=1e-5)


def test_merge_equals_unmerged_and_restores_official_keys():
    plain_keys = set(make_toy().state_dict())
    model = adapted()
    randomize_lora(model)
    before = model(X)
    g_before = model.conv.base_layer.weight_g.clone()
    merge_lora(model)
    assert not lora_layers(model)
    assert set(model.state_dict()) == plain_keys  # weight_g/weight_v, not a stale 'weight'
    assert not torch.equal(model.conv.weight_g, g_before)  # the update went into the defining parameters
    torch.testing.assert_close(model(X), before, atol=1e-6, rtol=1e-5)
    assert model.unet is model.block


def test_naive_merge_into_weight_is_lost_on_weight_norm():
    """Why merge_lora exists: peft's own merge writes into ``weight``, which weight_norm recomputes."""
    model = adapted()
    randomize_lora(model)
    x = torch.randn(1, 6, 8)
    adapted_out = model.conv(x)
    base_out = model.conv.base_layer(x)
    model.conv.merge()
    assert not torch.allclose(model.conv(x), adapted_out, atol=1e-4)
    torch.testing.assert_close(model.conv(x), base_out)


def test_spectral_norm_merge_refused():
    model = make_toy()
    apply_lora(model, targets=["sn"])
    randomize_lora(model)
    with pytest.raises(ValueError, match="spectral"):
        merge_lora(model)


def test_unsupported_layers_are_clear_errors():
    model = make_toy()
    with pytest.raises(ValueError, match="dropout"):
        apply_lora(model, targets=["lstm"], dropout=0.1, layer_types=ALL)
    grouped = nn.Sequential(nn.Conv1d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="grouped"):
        apply_lora(grouped, targets=["0"])
    deconv = nn.Sequential(nn.ConvTranspose1d(4, 4, 3))
    with pytest.raises(ValueError):
        apply_lora(deconv, targets=["0"])
    model = adapted()
    with pytest.raises(ValueError, match="already"):
        apply_lora(model, targets=["inp"], adapter_name="again")
    with pytest.raises(ValueError, match="already has a LoRA adapter named"):
        apply_lora(model, targets=["sn"])


def test_delta_factors_match_peft_delta_weight():
    model = adapted()
    randomize_lora(model)
    for name, layer in lora_layers(model).items():
        for wname, (b, a) in delta_factors(layer).items():
            if name == "lstm":
                ref = layer.get_delta_weight("default")[wname]
            else:
                ref = layer.get_delta_weight("default")
            torch.testing.assert_close((b @ a).reshape(ref.shape), ref)


def test_save_load_roundtrip_peft_layout(tmp_path):
    model = adapted()
    randomize_lora(model)
    out = model(X)
    folder = save_adapter(model, tmp_path / "adapter")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 2 and config["lora_alpha"] == 4
    assert config["target_modules"] == ["block.fc", "conv", "head", "inp", "lstm"]
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "base_model.model.inp.lora_A.weight" in keys
    assert "base_model.model.lstm.lora_B.weight_hh_l0_reverse" in keys
    assert not any(k.startswith("base_model.model.unet.") for k in keys)  # aliased layer saved once

    fresh = make_toy()
    load_adapter(fresh, folder)  # injects (re-registering the LSTM layer) and fills the weights
    torch.testing.assert_close(fresh(X), out, atol=0, rtol=0)

    merged = load_adapted(make_toy(), tmp_path)  # finds <folder>/adapter and merges
    assert not lora_layers(merged)
    torch.testing.assert_close(merged(X), out, atol=1e-6, rtol=1e-5)


def test_load_onto_wrong_model_is_clear(tmp_path):
    model = adapted()
    save_adapter(model, tmp_path / "a")
    with pytest.raises(ValueError, match="does not fit|does not match"):
        load_adapter(make_toy(d=8), tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        load_adapter(make_toy(), tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no LoRA adapter"):
        load_adapted(make_toy(), tmp_path)
