"""The joint stage's SLM-adversarial training (StyleTTS 2, Li et al. 2023, section 3.2.3).

Speech is generated end to end from text (in-distribution or out-of-distribution) with *differentiable*
durations: each token's duration probabilities are turned into a soft alignment by Gaussian upsampling,
so the WavLM discriminator's verdict on the generated clip reaches the duration predictor, the style
diffusion and PL-BERT. The discriminator (``wd``) sees WavLM hidden states of real and generated clips.

The discriminator update follows the official loop: on half of its steps it compares ground-truth clips
with generated ones; on the other half it takes the decoder's reconstructions of the ground truth as
"real" and adds two L1 regularisers that teach it to ignore clip length and reconstruction artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import Batch
from ..models.styletts2.layers import run_lstm
from ..objective.adversarial import slm_discriminator_loss, slm_discriminator_scores, slm_generator_loss
from ..objective.crops import crop_waves
from ..objective.finetune import utterance_generator
from ..text.tokenizer import length_to_mask


@dataclass
class SLMAdversarialSettings:
    min_len: int = 400  # mel frames
    max_len: int = 500
    batch_percentage: float = 0.5
    discriminator_every: int = 10  # official ``iter``
    grad_threshold: float = 5.0  # official ``thresh``
    predictor_scale: float = 0.01  # official ``scale``
    sigma: float = 1.5  # official ``sig``

    @classmethod
    def from_config(cls, params: dict | None) -> SLMAdversarialSettings:
        p = params or {}
        return cls(
            min_len=int(p.get("min_len", 400)),
            max_len=int(p.get("max_len", 500)),
            batch_percentage=float(p.get("batch_percentage", 0.5)),
            discriminator_every=int(p.get("iter", 10)),
            grad_threshold=float(p.get("thresh", 5.0)),
            predictor_scale=float(p.get("scale", 0.01)),
            sigma=float(p.get("sig", 1.5)),
        )


def soft_alignment(logits: torch.Tensor, sigma: float) -> tuple[torch.Tensor, int]:
    """Gaussian upsampling of one utterance's duration logits ``[T, max_dur]`` -> attention ``[T, L]``.

    Expected durations ``d = sigmoid(logits).sum(-1)`` place token centres at ``cumsum(d) - d/2``; each
    frame's weights over tokens are a softmax of the duration logits smoothed by a Gaussian around the
    centres (the official formulation), so the result is differentiable in the logits.
    """
    probs = torch.sigmoid(logits)
    dur = probs.sum(-1)
    frames = max(1, int(torch.round(dur.sum()).item()))
    t = torch.arange(frames, device=logits.device, dtype=logits.dtype).unsqueeze(0).expand(len(dur), frames)
    centre = torch.cumsum(dur, 0) - dur / 2
    kernel = torch.exp(-0.5 * torch.square(t - (frames - centre.unsqueeze(-1))) / sigma**2)
    out = torch.nn.functional.conv1d(
        logits.unsqueeze(0), kernel.unsqueeze(1), padding=frames - 1, groups=len(dur)
    )[..., :frames]
    return torch.softmax(out.squeeze(0), dim=0), frames


@dataclass
class SLMStepOutput:
    generator_loss: torch.Tensor
    real: torch.Tensor  # [K, 1, S] ground-truth clips
    fake: torch.Tensor  # [K, 1, S] generated clips (detached)
    clips: int


class SLMAdversarial(nn.Module):
    def __init__(
        self, model: nn.Module, slm: nn.Module, settings: SLMAdversarialSettings, seed: int = 0
    ) -> None:
        super().__init__()
        self.model = model
        self.slm = slm
        self.settings = settings
        self.seed = seed

    def step(self, batch: Batch, step: int, s_trg: torch.Tensor, ref: torch.Tensor) -> SLMStepOutput | None:
        """Generate clips from text with differentiable durations; ``None`` if fewer than two fit."""
        m, st = self.model, self.settings
        g = utterance_generator(self.seed, step, "slm")
        in_domain = batch.ood_tokens is None or bool(torch.rand(1, generator=g) < 0.5)
        tokens = batch.tokens if in_domain else batch.ood_tokens
        lengths = batch.token_lengths if in_domain else batch.ood_token_lengths
        text_mask = length_to_mask(lengths, tokens.shape[1])
        bert_dur = m.bert(tokens, attention_mask=(~text_mask).int())
        d_en = m.bert_encoder(bert_dur).transpose(-1, -2)
        sd = m.style_dim
        if in_domain and bool(torch.rand(1, generator=g) < 0.5):
            s_preds = s_trg
        else:
            num_steps = 3 + int(torch.randint(2, (1,), generator=g))
            noise = torch.randn(s_trg.shape, generator=g).unsqueeze(1).to(s_trg)
            s_preds = m.diffusion.sample(
                noise, bert_dur, ref, num_steps=num_steps, embedding_mask_proba=0.1
            ).squeeze(1)
        s_dur = s_preds[:, sd:]
        # officially the whole predictor runs here (in training mode): dropout 0.5 before the duration
        # head, and a second predictor call (fresh dropout draws in its text encoder) for the prosody
        d = m.predictor.text_encoder(d_en, s_dur, lengths, text_mask)
        x = run_lstm(m.predictor.lstm, d, lengths, total=d.shape[1])
        logits = m.predictor.duration_proj(F.dropout(x, 0.5, training=m.predictor.training))
        attns, frames = [], []
        for b in range(len(lengths)):
            a, f = soft_alignment(logits[b, : int(lengths[b])], st.sigma)
            attns.append(a)
            frames.append(f)
        attn = logits.new_zeros(len(lengths), tokens.shape[1], max(frames))
        for b, a in enumerate(attns):
            attn[b, : a.shape[0], : a.shape[1]] = a
        with torch.no_grad():
            t_en = m.text_encoder(tokens, lengths, text_mask)
        asr = t_en @ attn
        if m.predictor.training:
            d = m.predictor.text_encoder(d_en, s_dur, lengths, text_mask)
        p = d.transpose(-1, -2) @ attn
        clip = min(max(min(frames) // 2 - 1, st.min_len // 2), st.max_len // 2)
        keep, en, p_en, real_starts, styles = [], [], [], [], []
        for b in range(len(lengths)):
            gt_frames = int(batch.mel_lengths[b]) // 2
            if gt_frames <= clip or frames[b] <= clip:
                continue
            start = int(torch.randint(frames[b] - clip, (1,), generator=g))
            en.append(asr[b, :, start : start + clip])
            p_en.append(p[b, :, start : start + clip])
            styles.append(s_preds[b])
            real_starts.append(int(torch.randint(gt_frames - clip, (1,), generator=g)))
            keep.append(b)
            if len(keep) >= st.batch_percentage * len(lengths):
                break
        if len(keep) <= 1:
            return None
        sp = torch.stack(styles)
        f0, n = m.predictor.F0Ntrain(torch.stack(p_en), sp[:, sd:])
        fake = m.decoder(torch.stack(en), f0, n, sp[:, :sd])
        gen = slm_generator_loss(m.wd, self.slm.hidden_states(fake))
        real = crop_waves(batch.waves, batch.wave_lengths, keep, real_starts, clip).unsqueeze(1)
        return SLMStepOutput(gen, real, fake.detach(), len(keep))

    def discriminator_due(self, batch_index: int) -> bool:
        """Official ``(iters + 1) % skip_update == 0``, where the loop passes the batch index within the
        epoch as ``iters``."""
        return (batch_index + 1) % self.settings.discriminator_every == 0

    def discriminator_loss(
        self,
        out: SLMStepOutput,
        step: int = 0,
        real: torch.Tensor | None = None,
        reconstruct: Callable[[], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """WavLM-discriminator loss (hidden states without gradient, as officially), and the sum of the
        two regularisers when this step used them (``None`` otherwise).

        ``real`` are the main step's ground-truth crops and ``reconstruct`` gives the decoder's
        reconstructions of them from ground-truth F0/energy. With both, a coin decides (per step, the
        same on every process) between the plain loss on ground-truth vs. generated SLM clips and the
        regularised one: reconstructions as "real", the longer side cropped to the shorter (or not, by a
        second coin), plus ``L1(D(crop), D(full)[:crop])`` (length invariance) and
        ``L1(D(ground truth), D(reconstruction))`` (artifact invariance). Without them: the plain loss.
        """
        wd, hidden = self.model.wd, self.slm.hidden_states
        g = utterance_generator(self.seed, step, "slm-discriminator")
        use_rec = real is not None and reconstruct is not None and bool(torch.rand(1, generator=g) < 0.5)
        if not use_rec:
            with torch.no_grad():
                real_h, fake_h = hidden(out.real), hidden(out.fake)
            return slm_discriminator_loss(wd, real_h, fake_h), None
        with torch.no_grad():
            rec = reconstruct().detach()
            fake = out.fake
            crop = min(rec.shape[-1], fake.shape[-1])
            longer = rec if rec.shape[-1] > fake.shape[-1] else fake
            full_h, crop_h = hidden(longer), hidden(longer[..., :crop])
            rec_h = full_h if longer is rec else hidden(rec)
            fake_h = full_h if longer is fake else hidden(fake)
            gt_h = hidden(real)
        crop_scores = slm_discriminator_scores(wd, crop_h)
        full_scores = slm_discriminator_scores(wd, full_h)
        length_reg = F.l1_loss(crop_scores, full_scores[..., : crop_scores.shape[-1]])
        chosen_h = crop_h if bool(torch.rand(1, generator=g) < 0.5) else full_h
        if longer is rec:
            loss = slm_discriminator_loss(wd, chosen_h, fake_h)
        else:
            loss = slm_discriminator_loss(wd, rec_h, chosen_h)
        artifact_reg = F.l1_loss(slm_discriminator_scores(wd, gt_h), slm_discriminator_scores(wd, rec_h))
        return loss + length_reg + artifact_reg, (length_reg + artifact_reg).detach()


def scale_predictor_gradients(model: nn.Module, settings: SLMAdversarialSettings) -> float:
    """The official gradient control after the SLM generator backward; returns the predictor's norm.

    If the predictor's gradient norm exceeds ``grad_threshold`` every gradient is divided by it; the
    duration head, the duration LSTM and the style diffusion are further scaled by ``predictor_scale``.
    """
    grads = [p.grad for p in model.predictor.parameters() if p.grad is not None]
    norm = float(torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads))) if grads else 0.0
    if norm > settings.grad_threshold:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(1.0 / norm)
    for module in (model.predictor.duration_proj, model.predictor.lstm, model.diffusion):
        for p in module.parameters():
            if p.grad is not None:
                p.grad.mul_(settings.predictor_scale)
    return norm
