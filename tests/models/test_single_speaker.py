"""Single-speaker StyleTTS 2 (``multispeaker: false``, as the official LJSpeech model)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.config import MICRO_CONFIG, load_config


@pytest.fixture(scope="module")
def single():
    cfg = copy.deepcopy(load_config(MICRO_CONFIG))
    cfg["model_params"]["multispeaker"] = False
    torch.manual_seed(0)
    return build_model(cfg).eval()


def test_denoiser_layout(single):
    keys = list(single.diffusion.state_dict())
    assert not any("to_features" in k for k in keys), "no reference-style input"
    assert "diffusion.net.blocks.0.attention.norm.weight" in keys  # plain affine layer norms
    assert "diffusion.net.blocks.0.attention.norm.fc.weight" not in keys
    assert "unet.blocks.0.attention.to_q.weight" in keys  # aliased like the multi-speaker model
    assert single.diffusion.diffusion.net.fixed_embedding.embedding.num_embeddings == 512


def test_synthesis_needs_no_reference(single):
    a, sr = single.synthesize("", phonemes="hˈaɪ", seed=3)
    b, _ = single.synthesize("", phonemes="hˈaɪ", seed=3)
    assert sr == 24000 and np.isfinite(a).all() and np.array_equal(a, b)
    # a given reference is still usable: the style is mixed with it as for multi-speaker models
    ref = np.random.default_rng(0).standard_normal(36000).astype(np.float32) * 0.1
    c, _ = single.synthesize("", phonemes="hˈaɪ", reference=ref, seed=3)
    assert np.isfinite(c).all()


def test_sampler_ignores_reference(single):
    bert_dur = torch.randn(1, 5, single.bert.config.hidden_size)
    noise = torch.randn(1, 2 * single.style_dim)
    ref = torch.randn(1, 2 * single.style_dim)
    with torch.no_grad():
        torch.manual_seed(1)
        a = single.sample_style(noise, bert_dur, None, num_steps=3)
        torch.manual_seed(1)
        b = single.sample_style(noise, bert_dur, ref, num_steps=3)
    assert torch.equal(a, b)


def test_training_terms(single, prepared_synthetic):
    from tts_adapt.data import TTSDataset, collate
    from tts_adapt.train import FineTuneObjective

    items = prepared_synthetic.items[:2]
    obj = FineTuneObjective(single, max_len=80, estimate_sigma_data=False)
    ds = TTSDataset(items, seed=0, multispeaker=False)
    p = obj.generator_pass(collate([ds[0], ds[1]]), step=0)
    assert p.ref is None and {"diff", "sty", "mel"} <= set(p.terms)
    assert all(torch.isfinite(v).all() for v in p.terms.values())
