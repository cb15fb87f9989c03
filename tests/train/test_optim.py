"""The optimiser groups equal what the official fine-tuning builds.

Oracle: the official construction replayed with torch itself. ``train_finetune.py`` (yl4579/StyleTTS2)
builds, per module, ``AdamW(lr=lr, weight_decay=1e-4, betas=(0.0, 0.99), eps=1e-9)`` (``optimizers.py``)
wrapped in ``OneCycleLR(max_lr, epochs, steps_per_epoch, pct_start=0, div_factor=1,
final_div_factor=1)`` with ``max_lr = lr`` (``2·bert_lr`` / ``2·ft_lr`` for bert / decoder and
style_encoder), never stepped; then sets bert to lr ``bert_lr``, betas (0.9, 0.99), weight decay 0.01 and
decoder / style_encoder to lr ``ft_lr``, betas (0.0, 0.99), weight decay 1e-4.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tts_adapt.train import TrainConfig
from tts_adapt.train.optim import build_optimizer, one_cycle_initial_beta1

MODULES = (
    "bert",
    "bert_encoder",
    "predictor",
    "decoder",
    "text_encoder",
    "style_encoder",
    "diffusion",
    "msd",
)


def official_groups(lr: float, bert_lr: float, ft_lr: float, epochs: int, steps_per_epoch: int) -> dict:
    out = {}
    for key in MODULES:
        opt = torch.optim.AdamW(
            nn.Linear(2, 2).parameters(), lr=lr, weight_decay=1e-4, betas=(0.0, 0.99), eps=1e-9
        )
        max_lr = {"bert": 2 * bert_lr, "decoder": 2 * ft_lr, "style_encoder": 2 * ft_lr}.get(key, lr)
        torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=max_lr,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=0.0,
            div_factor=1,
            final_div_factor=1,
        )
        g = opt.param_groups[0]
        if key == "bert":
            g["betas"], g["lr"], g["weight_decay"] = (0.9, 0.99), bert_lr, 0.01
        if key in ("decoder", "style_encoder"):
            g["betas"], g["lr"], g["weight_decay"] = (0.0, 0.99), ft_lr, 1e-4
        out[key] = g
    return out


@pytest.mark.parametrize("epochs,steps_per_epoch", [(50, 178), (2, 3), (1, 1)])
def test_groups_match_the_official_construction(epochs, steps_per_epoch):
    lr, bert_lr, ft_lr = 1e-4, 1e-5, 3e-4
    cfg = TrainConfig(method="full", steps=epochs * steps_per_epoch, lr=lr, bert_lr=bert_lr, ft_lr=ft_lr)
    params = {k: list(nn.Linear(2, 2).parameters()) for k in MODULES}
    opt = build_optimizer(params, cfg)
    want = official_groups(lr, bert_lr, ft_lr, epochs, steps_per_epoch)
    for group in opt.param_groups:
        ref = want[group["name"]]
        assert group["lr"] == pytest.approx(ref["lr"], rel=1e-12), group["name"]
        assert group["betas"][0] == pytest.approx(ref["betas"][0], abs=1e-12), group["name"]
        assert group["betas"][1] == pytest.approx(ref["betas"][1]), group["name"]
        assert group["weight_decay"] == pytest.approx(ref["weight_decay"]), group["name"]
        assert group["eps"] == 1e-9
    by_name = {g["name"]: g for g in opt.param_groups}
    # the numbers the issue names: lr (not 2·lr) and β1 ≈ 0.85 for the ordinary modules
    assert by_name["predictor"]["lr"] == lr and by_name["msd"]["lr"] == lr
    if epochs * steps_per_epoch > 100:
        assert by_name["predictor"]["betas"][0] == pytest.approx(0.85, abs=1e-4)


def test_closed_form_beta1_is_torch_one_cycle():
    for total in (1, 2, 7, 8900):
        opt = torch.optim.AdamW(nn.Linear(1, 1).parameters(), lr=1.0)
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=0.0, div_factor=1)
        assert one_cycle_initial_beta1(total) == pytest.approx(opt.param_groups[0]["betas"][0], abs=1e-12)


def test_empty_groups_are_left_out():
    cfg = TrainConfig(method="lora")
    assert build_optimizer({"bert": [], "decoder": []}, cfg) is None
    opt = build_optimizer({"bert": [], "decoder": list(nn.Linear(1, 1).parameters())}, cfg)
    assert [g["name"] for g in opt.param_groups] == ["decoder"]
