"""fp16 loss scaling in the trainer (CPU GradScaler; the same class runs on CUDA).

Oracle: ``torch.amp.GradScaler``'s documented semantics. On overflow ``step`` skips the update and
``update`` multiplies the scale by ``backoff_factor`` (0.5) and restarts the growth count; gradients are
``scale`` times too large until ``unscale_``; ``state_dict`` holds the scale and growth tracker.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tts_adapt.train.amp import LossScaling
from tts_adapt.train.slm_adversarial import SLMAdversarialSettings, scale_predictor_gradients

from .conftest import quick_config


def _scaled_backward(scaling: LossScaling, model: nn.Module, x: torch.Tensor) -> None:
    scaling.scale(model(x).pow(2).sum()).backward()


def test_skipped_overflow_backs_the_scale_off_like_the_scaler():
    torch.manual_seed(0)
    model, x = nn.Linear(3, 2), torch.randn(4, 3)
    ours = LossScaling("fp16", torch.device("cpu"))
    ref = torch.amp.GradScaler("cpu")
    ref_model = nn.Linear(3, 2)
    ref_model.load_state_dict(model.state_dict())
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.1)
    for _ in range(3):  # three overflowing steps in a row
        _scaled_backward(ours, model, x)
        model.weight.grad[0, 0] = float("inf")
        ours.skip()  # the trainer found non-finite gradients and skips the update
        model.zero_grad()
        ref.scale(ref_model(x).pow(2).sum()).backward()
        ref_model.weight.grad[0, 0] = float("inf")
        ref.step(ref_opt)
        ref.update()
        ref_opt.zero_grad()
    assert ours.scaler.get_scale() == ref.get_scale() == 65536.0 * 0.5**3
    assert ours.state_dict() == ref.state_dict()


def test_gradients_are_unscaled_before_the_slm_norm_threshold():
    """The official SLM step divides every gradient by the predictor's gradient norm when that norm
    exceeds ``thresh``: the norm must be the true one, not ``scale`` times it."""

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predictor = nn.Module()
            self.predictor.duration_proj = nn.Linear(3, 2)
            self.predictor.lstm = nn.Linear(3, 3)
            self.diffusion = nn.Linear(3, 3)

        def forward(self, x):
            return self.predictor.duration_proj(self.predictor.lstm(x) + self.diffusion(x))

    torch.manual_seed(0)
    x = torch.randn(5, 3)
    fp32, amp = Tiny(), Tiny()
    amp.load_state_dict(fp32.state_dict())
    settings = SLMAdversarialSettings(grad_threshold=1e6)  # true norms are far below, scaled ones above
    fp32(x).pow(2).sum().backward()
    want = scale_predictor_gradients(fp32, settings)
    scaling = LossScaling("fp16", torch.device("cpu"))
    opt = torch.optim.SGD(amp.parameters(), lr=0.1)
    _scaled_backward(scaling, amp, x)
    scaling.unscale(opt)
    got = scale_predictor_gradients(amp, settings)
    assert abs(got - want) <= 1e-5 * want and want < settings.grad_threshold
    for a, b in zip(fp32.parameters(), amp.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    scaling.step(opt)  # the scaler knows the gradients are unscaled: no second division, no error


def test_scaler_state_is_in_the_checkpoint(fresh_model, target_items, tmp_path):
    from tts_adapt.train.trainer import Trainer

    cfg = quick_config(method="lora", amp="fp16")
    trainer = Trainer(fresh_model(), cfg, target_items, tmp_path, progress=False)
    assert trainer.scaling.enabled
    trainer.scaling.scale(torch.ones(()))  # the scale is created on first use
    for _ in range(4):
        trainer.scaling.skip()
    trainer.step = 3
    trainer.save()
    resumed = Trainer(fresh_model(), cfg, target_items, tmp_path, progress=False)
    assert resumed.resume()
    assert resumed.scaling.state_dict() == trainer.scaling.state_dict()
    assert resumed.scaling.scaler.get_scale() == 65536.0 / 16


def test_identity_without_fp16():
    scaling = LossScaling("bf16", torch.device("cpu"))
    loss = torch.tensor(3.0)
    assert not scaling.enabled and scaling.scale(loss) is loss and scaling.state_dict() is None
    scaling.skip()  # nothing to back off


@pytest.mark.slow
def test_bf16_autocast_step_on_cpu_matches_float32(fresh_model, target_items, tmp_path):
    """``--amp bf16`` on a CPU: one LoRA step with the discriminators (their first layers run the
    width-polyphase rewrite, whose weight is gathered outside the convolution) completes, and every loss
    term is the float32 step's to bfloat16 precision (8 mantissa bits: ~0.4 % per rounding)."""
    from tts_adapt.train.trainer import Trainer

    results = {}
    for amp in ("none", "bf16"):
        cfg = quick_config(method="lora", amp=amp, steps=1, f0="yin", no_slm=True)
        trainer = Trainer(fresh_model(), cfg, target_items, tmp_path / amp, progress=False)
        assert trainer.objective.adversarial  # the path that failed runs
        results[amp] = trainer.train_step([next(trainer.batches())])
    fp32, bf16 = results["none"], results["bf16"]
    assert bf16.skipped is None and {"gen", "discriminator", "mel"} <= set(bf16.losses)
    for name, value in fp32.losses.items():
        assert abs(bf16.losses[name] - value) <= 0.05 * abs(value) + 1e-3, name


def test_scale_is_one_per_step_across_accumulated_micro_batches(fresh_model, target_items, tmp_path):
    """With ``--grad-accum 2`` the discriminator steps after the last micro-batch's generator pass, before
    that micro-batch's generator backward. GradScaler semantics: gradients summed over backward passes
    must all carry the same scale, so ``update()`` (which may change it) runs once, after the generator
    step. A scaler that grows at every update makes any mid-step update visible."""
    from tts_adapt.train.trainer import Trainer

    cfg = quick_config(method="lora", steps=1, batch_size=1, grad_accum=2, f0="yin", no_slm=True)
    trainer = Trainer(fresh_model(), cfg, target_items, tmp_path, progress=False)
    assert trainer.objective.adversarial  # the discriminator steps inside the step
    # float32 arithmetic (fp16 autocast on a CPU overflows the micro model), the fp16 run's scaler
    trainer.scaling.scaler = torch.amp.GradScaler("cpu", growth_interval=1)
    scales = []
    backward = trainer._backward

    def recording(loss):
        scales.append(trainer.scaling.scaler.get_scale())
        backward(loss)

    trainer._backward = recording
    source = trainer.batches()
    result = trainer.train_step([next(source) for _ in range(2)])
    assert result.skipped is None
    assert len(scales) == 4 and len(set(scales)) == 1  # D and G backward of both micro-batches
    assert trainer.scaling.scaler.get_scale() == 2 * scales[0]  # one growth: one update per step
