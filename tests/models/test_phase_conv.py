"""The width-polyphase rewrite of few-channel 2-D convolutions against ``F.conv2d`` / ``nn.Conv2d``."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from tts_adapt.models.styletts2.norm import spectral_norm, weight_norm
from tts_adapt.models.styletts2.phase_conv import phase_conv2d, phase_taps, spectrogram_conv2d


def test_phase_taps_by_hand():
    """Kernel 3, stride 1, padding 1, 2 phases: output phase q reads x[2J + q - 1 + t]. For q = 0 the
    taps t = 0, 1, 2 sit at offsets -1, 0, 1: phase 1 of block J-1, phase 0 and phase 1 of block J;
    for q = 1 at 0, 1, 2: phases 0 and 1 of block J and phase 0 of block J+1."""
    taps, d_min = phase_taps(3, 1, 1, 1, 2)
    assert d_min == -1
    none = 3  # no tap lands there
    expected = torch.tensor(
        [
            [[none, 1, none], [0, 2, none]],  # q = 0: [phase 0: d=-1,0,1], [phase 1: d=-1,0,1]
            [[none, 0, 2], [none, 1, none]],  # q = 1
        ]
    )
    assert torch.equal(taps, expected)


def test_phase_taps_with_stride_and_dilation():
    """Every tap lands exactly once for each output phase, at m = stride*q + dilation*t - padding."""
    for kernel, stride, dilation, padding, phases in [(9, 2, 1, 4, 4), (5, 1, 3, 6, 4), (2, 2, 1, 0, 8)]:
        taps, d_min = phase_taps(kernel, stride, dilation, padding, phases)
        for q in range(phases // stride):
            found = {}
            for p in range(phases):
                for d in range(taps.shape[2]):
                    t = int(taps[q, p, d])
                    if t < kernel:
                        found[t] = (d + d_min) * phases + p
            assert found == {t: stride * q + dilation * t - padding for t in range(kernel)}
    with pytest.raises(ValueError, match="multiple of the stride"):
        phase_taps(3, 3, 1, 1, 4)


def _random_case(rng: random.Random):
    while True:
        c, o = rng.choice([1, 2, 3]), rng.choice([1, 2, 4])
        kh, kw = rng.choice([1, 2, 3]), rng.choice([1, 2, 3, 5, 9])
        sh, sw = rng.choice([1, 2]), rng.choice([1, 2, 4])
        dh, dw = rng.choice([1, 2]), rng.choice([1, 2, 3])
        ph, pw = rng.randint(0, 2), rng.randint(0, 6)
        h, w = rng.randint(3, 9), rng.randint(1, 40)
        if w + 2 * pw - dw * (kw - 1) - 1 >= 0 and h + 2 * ph - dh * (kh - 1) - 1 >= 0:
            return (c, o, kh, kw, (sh, sw), (dh, dw), (ph, pw), h, w)


@pytest.mark.parametrize("seed", range(4))
def test_phase_conv2d_equals_conv2d_values_and_gradients(seed):
    """Random shapes, strides, dilations and paddings (widths down to 1, narrower than the phases):
    the rewrite gives ``F.conv2d``'s output and autograd's gradients for input, weight and bias."""
    rng = random.Random(seed)
    for _ in range(40):
        c, o, kh, kw, stride, dilation, padding, h, w = _random_case(rng)
        for phases in (4, 8):
            if phases % stride[1]:
                continue
            x = torch.randn(2, c, h, w, dtype=torch.float64, requires_grad=True)
            wt = torch.randn(o, c, kh, kw, dtype=torch.float64, requires_grad=True)
            b = torch.randn(o, dtype=torch.float64, requires_grad=True)
            ref = F.conv2d(x, wt, b, stride, padding, dilation)
            out = phase_conv2d(x, wt, b, stride, padding, dilation, phases=phases)
            assert out.shape == ref.shape
            torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
            g = torch.randn_like(ref)
            for a, e in zip(
                torch.autograd.grad(out, (x, wt, b), g), torch.autograd.grad(ref, (x, wt, b), g), strict=True
            ):
                torch.testing.assert_close(a, e, atol=1e-11, rtol=0)


@pytest.mark.parametrize("wrap", [pytest.param(weight_norm, marks=pytest.mark.slow), spectral_norm])
def test_spectrogram_conv2d_is_the_normalised_layer(wrap):
    """The discriminator's first layer (1 -> 4 channels, 3 x 9 kernel, 'same' padding) and a strided
    later layer, weight- or spectral-normalised: values and the gradients of the input and of every
    parameter (``weight_g``/``weight_v`` or ``weight_orig``, bias) equal ``conv(x)``; ``gradcheck``."""
    torch.manual_seed(0)
    for conv, channels in (
        (torch.nn.Conv2d(1, 4, (3, 9), padding=(1, 4)), 1),
        (torch.nn.Conv2d(4, 4, (3, 9), stride=(1, 2), padding=(1, 4)), 4),
    ):
        conv = wrap(conv).double().eval()  # eval: no spectral-norm power step between the two calls
        x = torch.randn(2, channels, 11, 23, dtype=torch.float64, requires_grad=True)
        y = spectrogram_conv2d(conv, x)
        ref = conv(x)
        torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
        g = torch.randn_like(ref)
        params = [x, *conv.parameters()]
        for a, e in zip(torch.autograd.grad(y, params, g), torch.autograd.grad(ref, params, g), strict=True):
            torch.testing.assert_close(a, e, atol=1e-11, rtol=0)
        assert torch.autograd.gradcheck(lambda t, conv=conv: spectrogram_conv2d(conv, t), (x,))


def test_spectrogram_conv2d_falls_back_to_the_layer():
    """Grouped and 'same'-string-padded convolutions are not rewritten: the result is ``conv(x)`` exactly."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 9, 20)
    for conv in (
        torch.nn.Conv2d(2, 2, (3, 9), padding=(1, 4), groups=2),
        torch.nn.Conv2d(2, 3, 3, padding="same"),
    ):
        assert torch.equal(spectrogram_conv2d(conv, x), conv(x))


def test_spectrogram_conv2d_under_bfloat16_autocast():
    """Under CPU autocast the rewrite computes in bfloat16 as ``F.conv2d`` does: same dtype, values
    within bfloat16 rounding of the float32 result."""
    torch.manual_seed(0)
    conv = weight_norm(torch.nn.Conv2d(1, 4, (3, 9), padding=(1, 4)))
    x = torch.randn(2, 1, 30, 65)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, ref = spectrogram_conv2d(conv, x), conv(x)
    assert y.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), conv(x), atol=0.05, rtol=0.02)
