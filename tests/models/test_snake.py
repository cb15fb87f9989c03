"""Snake activation: the closed-form gradient used when ``α`` is frozen against autograd's."""

from __future__ import annotations

import torch

from tts_adapt.models.styletts2.vocoder_blocks import snake


def reference(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The official Snake, ``x + (1/α)·sin(αx)²`` (StyleTTS 2 ``Modules/hifigan.py``)."""
    return x + (1 / alpha) * (torch.sin(alpha * x) ** 2)


def test_frozen_alpha_values_and_input_gradient_equal_autograd():
    """With ``α`` frozen (LoRA adaptation) the output and ``dL/dx`` equal autograd through the formula,
    in float64 to rounding; the second derivative is not needed by training and is not claimed."""
    torch.manual_seed(0)
    x = (3 * torch.randn(2, 5, 400, dtype=torch.float64)).requires_grad_()
    alpha = torch.rand(1, 5, 1, dtype=torch.float64) + 0.3
    g = torch.randn(2, 5, 400, dtype=torch.float64)
    fast = snake(x, alpha)
    ref = reference(x, alpha)
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=0)
    (gx_fast,) = torch.autograd.grad(fast, x, g)
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(gx_fast, gx_ref, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda t: snake(t, alpha), (x[:1, :, :30].detach().requires_grad_(),))


def test_trained_alpha_still_gets_its_gradient():
    """Where ``α`` trains (pre-training, full fine-tuning) its gradient must flow: the autograd path."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 50, dtype=torch.float64, requires_grad=True)
    alpha = (torch.rand(1, 3, 1, dtype=torch.float64) + 0.3).requires_grad_()
    g = torch.randn(2, 3, 50, dtype=torch.float64)
    got = torch.autograd.grad(snake(x, alpha), (x, alpha), g)
    want = torch.autograd.grad(reference(x, alpha), (x, alpha), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_float32_lora_step_shapes():
    """At the decoder's float32 waveform sizes the two agree to float32 rounding."""
    torch.manual_seed(0)
    x = torch.randn(4, 8, 3000, requires_grad=True)
    alpha = torch.rand(1, 8, 1) + 0.5
    g = torch.randn(4, 8, 3000)
    (a,) = torch.autograd.grad(snake(x, alpha), x, g)
    (b,) = torch.autograd.grad(reference(x, alpha), x, g)
    torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-6)
