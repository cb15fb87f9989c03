"""``--curvature-scaling reference``: the reference implementation's KFAC scale, from a closed form.

Reference penalty (Chen & Garner's code): ``λ · Σ ΔW·(G_f ΔW A)`` with ``G_f = (1/F) Σ_{n,t} g gᵀ`` (frame
mean) and no ½; ours is ``λ/2 · Σ ΔW·(G ΔW A)`` with ``G = (1/N) Σ_{n,t} g gᵀ``. So for one layer the two
differ by exactly ``2 · N / F``, with N utterances and F the frames that layer saw.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tts_adapt.adapters import apply_lora
from tts_adapt.curvature import estimate
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.priors import LaplacePrior
from tts_adapt.priors.scaling import apply_scaling

from .test_objectives import make_batch


@pytest.fixture(scope="module")
def kfac(micro_model):
    return estimate(
        micro_model,
        [make_batch()],
        get_objective("mel", max_len=80),
        "kfac",
        ["bert_encoder"],
        progress=False,
    )


def test_reference_kfac_penalty_is_the_frame_mean_form_without_half(micro_model, kfac):
    layer = "bert_encoder"
    n, frames = kfac.num_utterances, float(kfac.info[layer]["frames"])
    assert n == 2 and frames == float(make_batch().token_lengths.sum())  # the text side: one row per token
    g = torch.Generator().manual_seed(0)
    delta = 0.01 * torch.randn(kfac.info[layer]["d_out"], kfac.info[layer]["d_in"], generator=g)
    a = kfac.layers[layer]["A"][: delta.shape[1], : delta.shape[1]].double().numpy()
    gg = kfac.layers[layer]["G"].double().numpy()
    d = delta.double().numpy()
    reference = 1.0 * float(np.sum(d * ((gg * n / frames) @ d @ a)))  # λ = 1, no ½
    ours = 0.5 * float(np.sum(d * (gg @ d @ a)))
    scaled, factor = apply_scaling(kfac, "reference")
    assert factor * 0.5 * float(scaled.quadratic(layer, delta)) == pytest.approx(reference, rel=1e-5)
    assert 0.5 * float(kfac.quadratic(layer, delta)) == pytest.approx(ours, rel=1e-5)
    assert kfac.layers[layer]["G"] is not scaled.layers[layer]["G"]  # the loaded file is not modified


def test_reference_scaling_through_the_prior(micro_model, kfac):
    """The prior built as adapt builds it: reference / ours = 2 N / F after a LoRA step."""
    from tts_adapt.models.styletts2.model import StyleTTS2

    model = StyleTTS2(micro_model.config)
    model.load_state_dict(micro_model.state_dict())
    apply_lora(model, targets=["bert_encoder"], rank=2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # zero at init: give the shift B·A a value
                p.add_(0.01)
    scaled, factor = apply_scaling(kfac, "reference")
    ours = float(LaplacePrior(model, kfac, 1.0).penalty())
    ref = float(LaplacePrior(model, scaled, factor).penalty())
    n, frames = kfac.num_utterances, float(kfac.info["bert_encoder"]["frames"])
    assert ours > 0 and ref / ours == pytest.approx(2 * n / frames, rel=1e-4)


def test_reference_scaling_of_other_methods():
    assert apply_scaling("l2sp", "reference") == ("l2sp", 2.0)
    assert apply_scaling("l2sp", "ours") == ("l2sp", 1.0)
    with pytest.raises(ValueError, match="ours, reference"):
        apply_scaling("l2sp", "paper")
