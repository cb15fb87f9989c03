"""The official StyleTTS 2 fine-tuning step, run from the official repository's own modules (imported
from ``--official PATH``; nothing is copied here) on the weights of one of our models, for timing.

``train_finetune.py`` keeps its step inside ``main()``, so it cannot be imported; :class:`OfficialStep`
performs the same operations in the same order with the official networks (``models.build_model``),
losses (``MultiResolutionSTFTLoss``, ``GeneratorLoss``, ``DiscriminatorLoss``), diffusion sampler,
helpers (``utils.length_to_mask``, ``utils.log_norm``, ``utils.maximum_path``) and optimiser
(``optimizers.build_optimizer``, with the script's learning-rate and β adjustments). The official
train-mode set is used: aligner, text encoder, predictor, PL-BERT and its projection, discriminators in
train mode; the rest in eval mode. Every module trains (the official fine-tuning is full fine-tuning).

Three substitutions, all outside the networks:

* ``monotonic_align`` (a separately installed Cython package the official ``utils.py`` imports) is
  provided by our monotonic alignment search (:mod:`tts_adapt.models.styletts2.alignment`, compiled
  with numba): milliseconds per batch either way.
* The WavLM terms are left out (no WavLM weights offline): the step stops before ``loss_lm`` and the
  joint SLM-adversarial stage. Our step is timed with ``--no-slm`` for the same reason.

* The official spectral discriminator moves its window with ``window.to(y.get_device())``, which is
  ``-1`` for a CPU tensor (the official code runs on CUDA only), so on CPU the step runs with
  ``Tensor.get_device`` answering ``"cpu"`` for CPU tensors.

The style diffusion runs (the step as after ``diff_epoch``).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from official_inference import import_official, official_networks

from tts_adapt.data.dataset import Batch
from tts_adapt.models.styletts2.alignment import _best_path, length_mask_2d
from tts_adapt.models.styletts2.model import StyleTTS2

TRAINED_IN_TRAIN_MODE = ("text_aligner", "text_encoder", "predictor", "bert_encoder", "bert", "msd", "mpd")
GENERATOR_KEYS = (
    "bert_encoder",
    "bert",
    "predictor",
    "predictor_encoder",
    "style_encoder",
    "decoder",
    "text_encoder",
    "text_aligner",
    "diffusion",
)


def _provide_monotonic_align() -> None:
    """A ``monotonic_align`` module for the official ``utils.py``: the same entry points, our search."""
    if "monotonic_align" in sys.modules:
        return

    def maximum_path_c(path: np.ndarray, value: np.ndarray, t_t_max: np.ndarray, t_s_max: np.ndarray) -> None:
        for b in range(path.shape[0]):
            t, s = int(t_t_max[b]), int(t_s_max[b])
            path[b, :t, :s] = _best_path(np.ascontiguousarray(value[b, :t, :s]), t, s)

    def mask_from_lens(similarity: torch.Tensor, symbol_lens: torch.Tensor, mel_lens: torch.Tensor):
        return length_mask_2d(symbol_lens, mel_lens, similarity.shape[1], similarity.shape[2])

    core = types.ModuleType("monotonic_align.core")
    core.maximum_path_c = maximum_path_c
    package = types.ModuleType("monotonic_align")
    package.core = core
    package.mask_from_lens = mask_from_lens
    package.maximum_path = None  # the official utils.py defines its own wrapper
    sys.modules["monotonic_align"] = package
    sys.modules["monotonic_align.core"] = core


@contextlib.contextmanager
def _cpu_get_device() -> Iterator[None]:
    """``Tensor.get_device`` returns ``"cpu"`` instead of ``-1`` for CPU tensors, inside the block."""
    original = torch.Tensor.get_device

    def get_device(tensor: torch.Tensor):
        return "cpu" if tensor.device.type == "cpu" else original(tensor)

    torch.Tensor.get_device = get_device
    try:
        yield
    finally:
        torch.Tensor.get_device = original


class OfficialStep:
    """One official fine-tuning step (discriminator update, then generator update) on our batches."""

    def __init__(
        self, path: str | os.PathLike, ours: StyleTTS2, steps_per_epoch: int = 1000, device: str = "cpu"
    ) -> None:
        path = import_official(path)
        _provide_monotonic_align()
        import utils as official_utils
        from losses import DiscriminatorLoss, GeneratorLoss, MultiResolutionSTFTLoss
        from Modules.diffusion.sampler import ADPM2Sampler, DiffusionSampler, KarrasSchedule
        from munch import Munch
        from optimizers import build_optimizer

        with open(os.path.join(path, "Configs", "config_ft.yml"), encoding="utf-8") as f:
            ft = yaml.safe_load(f)
        self.utils = official_utils
        self.loss_params = Munch(ft["loss_params"])
        opt = Munch(ft["optimizer_params"])
        self.device = torch.device(device)
        self.nets = official_networks(path, ours)
        for net in self.nets.values():
            net.to(self.device)
        self.nets.diffusion.diffusion.sigma_data = ours.diffusion.sigma_data
        params = ours.config["model_params"]
        self.multispeaker = bool(params.get("multispeaker", True))
        self.estimate_sigma_data = bool(params["diffusion"]["dist"].get("estimate_sigma_data", True))
        self.n_down = self.nets.text_aligner.n_down
        self.sampler = DiffusionSampler(
            self.nets.diffusion.diffusion,
            sampler=ADPM2Sampler(),
            sigma_schedule=KarrasSchedule(sigma_min=0.0001, sigma_max=3.0, rho=9.0),
            clamp=False,
        )
        self.gl = GeneratorLoss(self.nets.mpd, self.nets.msd)
        self.dl = DiscriminatorLoss(self.nets.mpd, self.nets.msd)
        self.stft_loss = MultiResolutionSTFTLoss().to(self.device)
        # the script's optimiser: OneCycleLR per module, then PL-BERT and the acoustic modules adjusted
        sched = {"max_lr": opt.lr, "pct_start": 0.0, "epochs": 1, "steps_per_epoch": steps_per_epoch}
        sched_dict = {key: dict(sched) for key in self.nets}
        sched_dict["bert"]["max_lr"] = opt.bert_lr * 2
        sched_dict["decoder"]["max_lr"] = opt.ft_lr * 2
        sched_dict["style_encoder"]["max_lr"] = opt.ft_lr * 2
        params = {key: self.nets[key].parameters() for key in self.nets}
        self.optimizer = build_optimizer(params, scheduler_params_dict=sched_dict, lr=opt.lr)
        for g in self.optimizer.optimizers["bert"].param_groups:
            g.update(betas=(0.9, 0.99), lr=opt.bert_lr, initial_lr=opt.bert_lr, min_lr=0, weight_decay=0.01)
        for module in ("decoder", "style_encoder"):
            for g in self.optimizer.optimizers[module].param_groups:
                g.update(betas=(0.0, 0.99), lr=opt.ft_lr, initial_lr=opt.ft_lr, min_lr=0, weight_decay=1e-4)

    def set_modes(self) -> None:
        for key, net in self.nets.items():
            net.train(key in TRAINED_IN_TRAIN_MODE)

    def step(self, batch: Batch, max_len: int) -> dict[str, float] | None:
        with _cpu_get_device() if self.device.type == "cpu" else contextlib.nullcontext():
            return self._step(batch, max_len)

    def _step(self, batch: Batch, max_len: int) -> dict[str, float] | None:
        """The loop body of ``train_finetune.py`` after ``diff_epoch``, without the WavLM terms;
        ``None`` where the official loop would ``continue``."""
        m, u, lp = self.nets, self.utils, self.loss_params
        self.set_modes()
        waves = [batch.waves[b, : int(batch.wave_lengths[b])].cpu().numpy() for b in range(len(batch))]
        batch = batch.to(self.device)
        texts, input_lengths = batch.tokens, batch.token_lengths
        mels, mel_input_length, ref_mels = batch.mels, batch.mel_lengths, batch.ref_mels
        with torch.no_grad():
            mask = u.length_to_mask(mel_input_length // (2**self.n_down)).to(self.device)
            text_mask = u.length_to_mask(input_lengths).to(self.device)
            ref = None
            if self.multispeaker:
                ref_in = ref_mels.unsqueeze(1)
                ref = torch.cat([m.style_encoder(ref_in), m.predictor_encoder(ref_in)], dim=1)
        _, s2s_pred, s2s_attn = m.text_aligner(mels, mask, texts)
        s2s_attn = s2s_attn.transpose(-1, -2)[..., 1:].transpose(-1, -2)
        mask_st = u.mask_from_lens(s2s_attn, input_lengths, mel_input_length // (2**self.n_down))
        s2s_attn_mono = u.maximum_path(s2s_attn, mask_st)
        t_en = m.text_encoder(texts, input_lengths, text_mask)
        asr = t_en @ (s2s_attn if random.getrandbits(1) else s2s_attn_mono)
        d_gt = s2s_attn_mono.sum(axis=-1).detach()

        ss, gs = [], []  # whole-utterance styles, one at a time (global average pooling)
        for b in range(len(mel_input_length)):
            mel = mels[b, :, : mel_input_length[b]].unsqueeze(0).unsqueeze(1)
            ss.append(m.predictor_encoder(mel))
            gs.append(m.style_encoder(mel))
        s_dur = torch.stack(ss).squeeze()
        s_trg = torch.cat([torch.stack(gs).squeeze(), s_dur], dim=-1).detach()
        bert_dur = m.bert(texts, attention_mask=(~text_mask).int())
        d_en = m.bert_encoder(bert_dur).transpose(-1, -2)

        num_steps = np.random.randint(3, 5)
        if self.estimate_sigma_data:
            m.diffusion.diffusion.sigma_data = s_trg.std(axis=-1).mean().item()
        s_preds = self.sampler(
            noise=torch.randn_like(s_trg).unsqueeze(1),
            embedding=bert_dur,
            embedding_scale=1,
            features=ref,
            embedding_mask_proba=0.1,
            num_steps=num_steps,
        ).squeeze(1)
        if self.multispeaker:
            loss_diff = m.diffusion(s_trg.unsqueeze(1), embedding=bert_dur, features=ref).mean()
        else:
            loss_diff = m.diffusion.diffusion(s_trg.unsqueeze(1), embedding=bert_dur).mean()
        loss_sty = F.l1_loss(s_preds, s_trg.detach())

        d, p = m.predictor(d_en, s_dur, input_lengths, s2s_attn_mono, text_mask)
        mel_len_st = int(mel_input_length.min().item() / 2 - 1)
        mel_len = min(int(mel_input_length.min().item() / 2 - 1), max_len // 2)
        en, gt, p_en, wav = [], [], [], []
        for b in range(len(mel_input_length)):
            mel_length = int(mel_input_length[b].item() / 2)
            start = np.random.randint(0, mel_length - mel_len)
            en.append(asr[b, :, start : start + mel_len])
            p_en.append(p[b, :, start : start + mel_len])
            gt.append(mels[b, :, 2 * start : 2 * (start + mel_len)])
            piece = waves[b][2 * start * 300 : 2 * (start + mel_len) * 300]
            wav.append(torch.from_numpy(piece).to(self.device))
            np.random.randint(0, mel_length - mel_len_st)  # the style-reference crop (unused there too)
        wav = torch.stack(wav).float().detach()
        en, p_en, gt = torch.stack(en), torch.stack(p_en), torch.stack(gt).detach()
        if gt.size(-1) < 80:
            return None

        s = m.style_encoder(gt.unsqueeze(1))
        s_dur = m.predictor_encoder(gt.unsqueeze(1))
        with torch.no_grad():
            f0_real, _, _ = m.pitch_extractor(gt.unsqueeze(1))
            n_real = u.log_norm(gt.unsqueeze(1)).squeeze(1)
            m.decoder(en, f0_real, n_real, s)  # y_rec_gt_pred: computed every step for the SLM stage
            wav = wav.unsqueeze(1)
        f0_fake, n_fake = m.predictor.F0Ntrain(p_en, s_dur)
        y_rec = m.decoder(en, f0_fake, n_fake, s)
        loss_f0 = F.smooth_l1_loss(f0_real, f0_fake) / 10
        loss_norm = F.smooth_l1_loss(n_real, n_fake)

        self.optimizer.zero_grad()
        d_loss = self.dl(wav.detach(), y_rec.detach()).mean()
        d_loss.backward()
        self.optimizer.step("msd")
        self.optimizer.step("mpd")

        self.optimizer.zero_grad()
        loss_mel = self.stft_loss(y_rec, wav)
        loss_gen = self.gl(wav, y_rec).mean()
        loss_ce = loss_dur = 0
        for pred, target, length in zip(d, d_gt, input_lengths):
            pred, target = pred[:length, :], target[:length].long()
            trg = torch.zeros_like(pred)
            for i in range(trg.shape[0]):
                trg[i, : target[i]] = 1
            dur_pred = torch.sigmoid(pred).sum(axis=1)
            loss_dur += F.l1_loss(dur_pred[1 : length - 1], target[1 : length - 1])
            loss_ce += F.binary_cross_entropy_with_logits(pred.flatten(), trg.flatten())
        loss_ce, loss_dur = loss_ce / texts.size(0), loss_dur / texts.size(0)
        loss_s2s = 0
        for pred, target, length in zip(s2s_pred, texts, input_lengths):
            loss_s2s += F.cross_entropy(pred[:length], target[:length])
        loss_s2s /= texts.size(0)
        loss_mono = F.l1_loss(s2s_attn, s2s_attn_mono) * 10
        g_loss = (
            lp.lambda_mel * loss_mel
            + lp.lambda_F0 * loss_f0
            + lp.lambda_ce * loss_ce
            + lp.lambda_norm * loss_norm
            + lp.lambda_dur * loss_dur
            + lp.lambda_gen * loss_gen
            + lp.lambda_sty * loss_sty
            + lp.lambda_diff * loss_diff
            + lp.lambda_mono * loss_mono
            + lp.lambda_s2s * loss_s2s
        )
        g_loss.backward()
        for key in GENERATOR_KEYS:
            self.optimizer.step(key)
        return {"g_loss": float(g_loss), "d_loss": float(d_loss), "mel": float(loss_mel)}


def official_step_runner(path: str | os.PathLike, ours: StyleTTS2, max_len: int, device: str = "cpu") -> Any:
    """A callable ``batch -> losses`` running the official step (what the benchmark times)."""
    step = OfficialStep(path, ours, device=device)
    return lambda batch: step.step(batch, max_len)
