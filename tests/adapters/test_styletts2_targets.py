"""LoRA on our StyleTTS 2 (the fixtures' tiny config): the paper's default targets, aliases, merging."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

from tts_adapt.adapters import (
    PAPER_MODULES,
    apply_lora,
    count_parameters,
    default_targets,
    lora_layers,
    merge_lora,
    named_layers,
    resolve_targets,
    unwrap,
)

from .toys import randomize_lora


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)
    return build_model(fixtures_dir / "checkpoint_set" / "tiny_config.yml").eval()


def test_default_targets_are_the_papers(tiny):
    targets = default_targets(tiny)
    layers = named_layers(tiny)
    assert all(type(layers[n]) is nn.Linear for n in targets)
    assert {n.split(".")[0] for n in targets} == set(PAPER_MODULES)
    assert "bert_encoder" in targets  # the module is itself a Linear
    # every Linear of the paper's modules that StyleTTS 2 runs, each once, the diffusion transformer
    # under its canonical name; PL-BERT's pooler is not on the path
    expected = {
        id(m) for top in PAPER_MODULES for m in getattr(tiny, top).modules() if type(m) is nn.Linear
    } | {id(tiny.bert_encoder)}
    expected -= {id(tiny.bert.pooler)}
    assert {id(layers[n]) for n in targets} == expected
    assert "bert.pooler" not in targets
    assert not any(".unet." in n for n in targets)
    assert any(n.startswith("diffusion.diffusion.net.blocks.0.") for n in targets)


def test_protected_modules_cannot_be_targeted(tiny):
    for name in ("text_aligner", "pitch_extractor", "mpd", "wd"):
        with pytest.raises(ValueError, match="not allowed|contains no|matches no"):
            resolve_targets(tiny, [name], layer_types=("linear", "conv1d"))
    assert resolve_targets(tiny, ["text_encoder"], layer_types=("lstm",)) == ["text_encoder.lstm"]


def test_lora_on_default_targets_and_decoder_convs(fixtures_dir):
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)
    model = build_model(fixtures_dir / "checkpoint_set" / "tiny_config.yml").eval()
    convs = [n for n in resolve_targets(model, ["decoder.generator"], layer_types=("conv1d",))]
    dilated = [n for n in convs if named_layers(model)[n].dilation[0] > 1]
    assert dilated, "the hifigan resblocks have dilated convs"
    names = default_targets(model)
    apply_lora(
        model,
        targets=names + dilated[:2] + ["predictor.shared"],
        rank=4,
        alpha=8,
        layer_types=("linear", "conv1d", "lstm"),
    )
    layers = lora_layers(model)
    assert set(layers) == set(names + dilated[:2] + ["predictor.shared"])
    # the aliased transformer: both paths reach the same LoRA wrapper
    q = model.diffusion.diffusion.net.blocks[0].attention.to_q
    assert q is model.diffusion.unet.blocks[0].attention.to_q and hasattr(q, "lora_A")
    counts = count_parameters(model)
    per = collections.Counter()
    for name, layer in layers.items():
        per[name] = sum(p.numel() for n, p in layer.named_parameters() if ".lora_" in "." + n)
    assert counts["lora"] == counts["trainable"] == sum(per.values())
    linear = sum(4 * (layer.in_features + layer.out_features) for n, layer in layers.items() if n in names)
    assert sum(per[n] for n in names) == linear

    # merged == unmerged on a dilated, weight-normed decoder block
    randomize_lora(model, std=0.05)
    block_name = dilated[0].rsplit(".convs", 1)[0]
    block = model.get_submodule(block_name)
    x = torch.randn(1, unwrap(block.convs1[0]).in_channels, 50)
    s = torch.randn(1, model.style_dim)
    with torch.no_grad():
        before = block(x, s)
        merge_lora(model)
        after = block(x, s)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    assert not lora_layers(model)
    assert set(model.state_dict()) == set(
        build_model(fixtures_dir / "checkpoint_set" / "tiny_config.yml").state_dict()
    )


def test_kokoro_default_targets_skip_layers_no_gradient_reaches(kokoro_model):
    """Kokoro carries a voice bank beside the StyleTTS 2 modules; it is still a StyleTTS 2 model, so the
    default targets are the paper's: the Linear layers of PL-BERT, bert_encoder, the prosody predictor and
    the decoder, without ALBERT's pooler (never run: the model reads the last hidden state) and the
    harmonic source's l_linear (run under no_grad, as the original): adapters there would never train
    and their curvature would be zero. Expected set built here from the module tree."""
    from tts_adapt.adapters.targets import default_targets

    expected = sorted(
        name
        for name, m in kokoro_model.named_modules()
        if isinstance(m, nn.Linear)
        and name.split(".")[0] in ("bert", "bert_encoder", "predictor", "decoder")
        and not name.startswith(("bert.pooler", "decoder.generator.m_source"))
    )
    assert sorted(default_targets(kokoro_model)) == expected
    assert len(expected) == 82
