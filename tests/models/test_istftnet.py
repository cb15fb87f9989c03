"""The iSTFTNet decoder (the other official vocoder): window, layout, synthesis, float64."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.signal import get_window

from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.config import load_config
from tts_adapt.models.styletts2.inference import TRIM_SAMPLES, infer_tokens
from tts_adapt.models.styletts2.istftnet import ISTFT
from tts_adapt.text import Tokenizer

ISTFT_DECODER = {
    "type": "istftnet",
    "resblock_kernel_sizes": [3, 7, 11],
    "upsample_rates": [10, 6],
    "upsample_initial_channel": 512,
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "upsample_kernel_sizes": [20, 12],
    "gen_istft_n_fft": 20,
    "gen_istft_hop_size": 5,
}


@pytest.mark.parametrize("n", [16, 20, 1200])
def test_window_is_bit_identical_to_the_originals(n):
    """The source's STFT phase is a network input: the window must match scipy's to the last bit."""
    ours = ISTFT(n, n // 4, n).window
    theirs = torch.from_numpy(get_window("hann", n, fftbins=True).astype(np.float32))
    assert torch.equal(ours, theirs)


@pytest.fixture(scope="module")
def istft_model(set_b):
    cfg = copy.deepcopy(load_config(set_b / "tiny_config.yml"))
    cfg["model_params"]["decoder"] = dict(ISTFT_DECODER)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():  # keep exp(magnitude) in range with random weights, as the fixtures do
        model.decoder.generator.conv_post.weight_g.mul_(0.01)
    return model


def test_layout(istft_model):
    gen = istft_model.decoder.generator
    sd = istft_model.decoder.state_dict()
    n_fft = ISTFT_DECODER["gen_istft_n_fft"]
    assert tuple(sd["generator.conv_post.weight_v"].shape)[:2] == (n_fft + 2, 128)
    assert sd["generator.noise_convs.0.weight"].shape[1] == n_fft + 2
    assert not any("alpha" in k and k.startswith("generator.alphas") for k in sd)  # no Snake before ups
    assert gen.hop == 10 * 6 * 5 and istft_model.decoder.samples_per_frame == 600
    assert "window" not in sd  # not part of the official state dict


@pytest.mark.slow
def test_synthesis_length_and_float64(istft_model):
    ids = torch.tensor([Tokenizer().encode("hˈaɪ ðɛɹ")])
    ref_s = torch.randn(1, 2 * istft_model.style_dim, generator=torch.Generator().manual_seed(1)) * 0.1
    r = infer_tokens(istft_model, ids, ref_s, noise=torch.zeros(1, 1, ref_s.shape[1]), deterministic=True)
    assert r.wave.numel() == int(r.pred_dur.sum()) * 600 - TRIM_SAMPLES
    assert torch.isfinite(r.wave).all()
    frames = 12
    g = torch.Generator().manual_seed(2)
    asr = torch.randn(1, 512, frames, generator=g)
    f0 = torch.linspace(100, 200, 2 * frames).unsqueeze(0)
    n = torch.randn(1, 2 * frames, generator=g)
    s = torch.randn(1, istft_model.style_dim, generator=g) * 0.1
    dec = istft_model.decoder
    with torch.no_grad():
        y32 = dec(asr, f0, n, s, deterministic=True)
        dec.double()
        try:
            y64 = dec(asr.double(), f0.double(), n.double(), s.double(), deterministic=True)
        finally:
            dec.float()
    assert y32.shape == y64.shape == (1, 1, 2 * frames * 300)
    assert y64.dtype == torch.float64 and torch.isfinite(y64).all()
    # float32 and float64 legitimately differ here: the phase of the source's near-silent STFT bins is
    # ill-conditioned and iSTFTNet feeds it to the network. Only same-precision runs are comparable.
    with torch.no_grad():
        assert torch.equal(dec(asr, f0, n, s, deterministic=True), y32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_transform_in_float32(dtype):
    """Under ``--amp bf16`` the decoder hands the STFT pair bfloat16 tensors, and CPU FFTs have no
    bfloat16 complex type (the adaptation step failed with "mul_cpu not implemented for 'BComplex32'").
    Half-precision inputs must give exactly the float32 transform of the same values."""
    torch.manual_seed(0)
    stft = ISTFT(20, 5, 20)
    wave = torch.randn(2, 400).to(dtype)
    mag, phase = stft.transform(wave)
    ref_mag, ref_phase = stft.transform(wave.float())
    assert mag.dtype == torch.float32 and torch.equal(mag, ref_mag) and torch.equal(phase, ref_phase)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = stft.inverse(ref_mag.to(dtype), ref_phase.to(dtype))
    assert torch.equal(out, stft.inverse(ref_mag.to(dtype).float(), ref_phase.to(dtype).float()))
