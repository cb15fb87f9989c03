"""Per-utterance StyleTTS 2 losses for curvature estimation (``loss_fn(model, batch) -> Tensor[B]``).

The curvature of a Laplace prior is the Fisher of the *pre-training* loss, so the objective follows
the official second-stage training step (``train_second.py``/``train_finetune.py``) but keeps one loss
per utterance and leaves out the adversarial and SLM terms (they need discriminator and WavLM state
that is not part of the synthesis model):

* alignment (frozen): the text aligner's attention (without its random token masking), made monotonic
  by monotonic alignment search;
* styles: both style encoders on each full mel (per utterance, as officially, so padding never
  enters their average pooling) for the duration predictor and the diffusion target, and on the
  training crop for the decoder and the F0/energy predictor;
* ``dur``/``ce``: duration L1 and the per-frame duration BCE of the predictor;
* ``diff``: the EDM denoising loss of the style diffusion, on each utterance's unpadded text features;
* ``F0``/``norm``: F0 and energy reconstruction of ``F0Ntrain`` on the crop (smooth L1; F0 / 10);
* ``mel``: L1 between log-mels of the decoded crop (driven by the predicted F0/energy, as officially)
  and of the real waveform crop.

Weights default to the official ``loss_params`` (mel 5, F0 1, norm 1, dur 1, ce 20, diff 1). Crops are
``crop_frames`` mel frames (even; 300 = the LibriTTS ``max_len``) or, if shorter, the shortest utterance
of the batch less one frame pair, at a random offset (utterances under ~1 s are refused); the
randomness is reseeded per batch by :func:`~tts_adapt.curvature.estimate`. Padded text positions are
declared with :func:`~tts_adapt.curvature.frame_mask`, so they do not enter the curvature.

Unlike the official batched step, the parts whose result depends on the padding of other utterances
(the aligner's GroupNorm, the style encoders' pooling, the diffusion transformer's attention over
padded tokens) run one utterance at a time, so an utterance's loss does not depend on its batch. Run
the model in ``eval()`` mode (no dropout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import HOP_LENGTH, log_energy, log_mel
from ..models.styletts2.alignment import monotonic_alignment
from .masking import frame_mask

log = logging.getLogger(__name__)

MIN_CROP_FRAMES = 80  # official training skips crops shorter than this (the style encoders need >= 65)
OFFICIAL_WEIGHTS = {"mel": 5.0, "F0": 1.0, "norm": 1.0, "dur": 1.0, "ce": 20.0, "diff": 1.0}


@dataclass
class StyleTTS2Objective:
    """Callable ``(model, batch) -> Tensor[B]``; see the module docstring."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(OFFICIAL_WEIGHTS))
    crop_frames: int = 300
    embedding_mask_proba: float | None = None  # None: the model's configured value

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(OFFICIAL_WEIGHTS)
        if unknown:
            raise ValueError(
                f"unknown loss terms {sorted(unknown)}; expected some of {sorted(OFFICIAL_WEIGHTS)}"
            )
        if self.crop_frames < MIN_CROP_FRAMES or self.crop_frames % 2:
            raise ValueError(
                f"crop_frames must be an even number >= {MIN_CROP_FRAMES}, got {self.crop_frames}"
            )

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        used = {k: w for k, w in self.weights.items() if w}
        if not used:
            raise ValueError("all loss weights are zero")
        terms = self.terms(model, batch, which=set(used))
        total = None
        for name, w in used.items():
            total = terms[name] * w if total is None else total + terms[name] * w
        return total

    def terms(self, model: nn.Module, batch, which: set[str] | None = None) -> dict[str, torch.Tensor]:
        """Loss terms per utterance (unweighted), ``{name: Tensor[B]}``; ``which`` limits the work done."""
        which = set(OFFICIAL_WEIGHTS) if which is None else set(which)
        dev = next(model.parameters()).device
        b = batch.to(dev)
        n = len(b)
        texts, text_lengths, text_pad = b.tokens, b.token_lengths, b.text_mask
        mels, mel_lengths = b.mels.float(), b.mel_lengths
        valid_text = ~text_pad
        half = mel_lengths // 2
        crop = min(self.crop_frames // 2, int(half.min()) - 1)
        if 2 * crop < MIN_CROP_FRAMES and which & {"F0", "norm", "mel"}:
            short = [i for i, h in zip(b.ids, half.tolist()) if 2 * (h - 1) < MIN_CROP_FRAMES]
            raise ValueError(
                f"utterances {short[:5]} are shorter than {MIN_CROP_FRAMES + 2} mel frames (about 1 s), "
                "the shortest crop the style encoders accept (official training skips such batches); "
                "filter them out"
            )

        with torch.no_grad():
            aln = self._alignments(model, mels, mel_lengths, texts, text_lengths)
            t_en = model.text_encoder(texts, text_lengths, text_pad)
            asr = t_en @ aln  # [B, C, T/2]
            d_gt = aln.sum(-1)  # frames per token
            ref = None
            if "diff" in which:  # reference style (another utterance of the speaker), unpadded
                refs = [b.ref_mels[i : i + 1, :, : int(b.ref_mel_lengths[i])].unsqueeze(1) for i in range(n)]
                ref = torch.cat(
                    [torch.cat([model.style_encoder(r), model.predictor_encoder(r)], dim=1) for r in refs]
                )

        # global styles on each full mel, one utterance at a time (official; keeps padding out of pooling);
        # the acoustic one is only the (detached) diffusion target
        acoustic, prosodic = [], []
        for i in range(n):
            mel_i = mels[i : i + 1, :, : int(mel_lengths[i])].unsqueeze(1)
            with frame_mask(utterances=[i]):
                prosodic.append(model.predictor_encoder(mel_i))
            if "diff" in which:
                with torch.no_grad():
                    acoustic.append(model.style_encoder(mel_i))
        s_dur = torch.cat(prosodic)
        s_trg = torch.cat([torch.cat(acoustic), s_dur.detach()], dim=-1) if acoustic else None

        out: dict[str, torch.Tensor] = {}
        with frame_mask(valid_text):
            bert_dur = model.bert(texts, attention_mask=valid_text.int())
            d_en = model.bert_encoder(bert_dur).transpose(-1, -2)
            d, p = model.predictor(d_en, s_dur, text_lengths, aln, text_pad)
        out["dur"], out["ce"] = self._durations(d, d_gt, text_lengths)
        if "diff" in which:
            out["diff"] = torch.cat(
                [
                    self._diffusion(
                        model,
                        s_trg[i : i + 1],
                        bert_dur[i : i + 1, : int(text_lengths[i])],
                        ref[i : i + 1],
                        i,
                    )
                    for i in range(n)
                ]
            )
        if not which & {"F0", "norm", "mel"}:
            return out

        # training crops: equal length, so the acoustic path runs batched without padding
        starts = [int(torch.randint(0, int(h) - crop + 1, ()).item()) for h in half]
        en = torch.stack([asr[i, :, s : s + crop] for i, s in enumerate(starts)])
        p_en = torch.stack([p[i, :, s : s + crop] for i, s in enumerate(starts)])
        gt = torch.stack([mels[i, :, 2 * s : 2 * (s + crop)] for i, s in enumerate(starts)])
        wav = torch.stack(
            [b.waves[i, 2 * s * HOP_LENGTH : 2 * (s + crop) * HOP_LENGTH] for i, s in enumerate(starts)]
        )
        s_ac = model.style_encoder(gt.unsqueeze(1))
        s_pr = model.predictor_encoder(gt.unsqueeze(1))
        with torch.no_grad():
            f0_real = model.pitch_extractor(gt.unsqueeze(1))[0].reshape(n, -1)
            n_real = log_energy(gt)
        f0_fake, n_fake = model.predictor.F0Ntrain(p_en, s_pr)
        out["F0"] = F.smooth_l1_loss(f0_fake, f0_real, reduction="none").mean(-1) / 10
        out["norm"] = F.smooth_l1_loss(n_fake, n_real, reduction="none").mean(-1)
        if "mel" not in which:
            return out
        y = model.decoder(en, f0_fake, n_fake, s_ac).squeeze(1)
        frames = 2 * crop
        mel_fake = log_mel(y.float())[..., :frames]
        with torch.no_grad():
            mel_real = log_mel(wav.float())[..., :frames]
        out["mel"] = (mel_fake - mel_real).abs().mean(dim=(1, 2))
        return out

    @staticmethod
    def _alignments(
        model: nn.Module,
        mels: torch.Tensor,
        mel_lengths: torch.Tensor,
        texts: torch.Tensor,
        text_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Monotonic alignments ``[B, T_text, T_mel / 2]``, computed one utterance at a time.

        The aligner's GroupNorm statistics include padded frames, so a batched call would make an
        utterance's target depend on the rest of the batch. Its random token masking (on even in
        eval mode officially) is switched off: the targets should not be noisy.
        """
        aligner = model.text_aligner
        saved = getattr(aligner, "token_mask_prob", None)
        if saved is not None:
            aligner.token_mask_prob = 0.0
        try:
            out = mels.new_zeros(mels.shape[0], texts.shape[1], mels.shape[-1] // 2)
            for i in range(mels.shape[0]):
                tx, frames = int(text_lengths[i]), int(mel_lengths[i])
                mel = mels[i : i + 1, :, :frames]
                half = torch.tensor([frames // 2], device=mels.device)
                _, _, attn = aligner(
                    mel,
                    torch.zeros(1, frames // 2, dtype=torch.bool, device=mels.device),
                    texts[i : i + 1, :tx],
                )
                path = monotonic_alignment(attn[:, 1:, :], torch.tensor([tx]), half)
                out[i, :tx, : frames // 2] = path[0].to(out.dtype)
        finally:
            if saved is not None:
                aligner.token_mask_prob = saved
        return out

    def _diffusion(
        self, model: nn.Module, s_trg: torch.Tensor, bert_dur: torch.Tensor, ref: torch.Tensor, index: int = 0
    ) -> torch.Tensor:
        """EDM loss of one utterance (unpadded text features; the official loss is a padded batch mean)."""
        diff = model.diffusion
        edm = diff.diffusion
        x = s_trg.unsqueeze(1)
        sigmas = edm.sigma_distribution(x.shape[0], device=x.device).to(x.dtype)
        noise = torch.randn_like(x)
        proba = diff.embedding_mask_proba if self.embedding_mask_proba is None else self.embedding_mask_proba
        with frame_mask(utterances=[index]):
            denoised = edm.denoise_fn(
                x + sigmas.view(-1, 1, 1) * noise,
                sigmas=sigmas,
                embedding=bert_dur,
                features=ref,
                embedding_mask_proba=proba,
            )
        return (denoised - x).pow(2).mean(dim=(1, 2)) * edm.loss_weight(sigmas)

    @staticmethod
    def _durations(
        d: torch.Tensor, d_gt: torch.Tensor, text_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dur, ce = [], []
        steps = torch.arange(d.shape[-1], device=d.device)
        for i in range(d.shape[0]):
            length = int(text_lengths[i])
            logits = d[i, :length]
            target = d_gt[i, :length]
            bins = (steps[None] < target[:, None]).to(logits.dtype)
            pred = torch.sigmoid(logits).sum(-1)
            inner = slice(1, max(length - 1, 2))
            dur.append(F.l1_loss(pred[inner], target[inner]))
            ce.append(F.binary_cross_entropy_with_logits(logits.flatten(), bins.flatten()))
        return torch.stack(dur), torch.stack(ce)


class TrainerObjective:
    """The adaptation trainer's generator loss per utterance (``FineTuneObjective.per_utterance_loss``:
    multi-resolution mel, adversarial and all other official terms), built for the model on first use."""

    def __init__(self, crop_frames: int = 300) -> None:
        self.crop_frames = int(crop_frames)
        self._objective = None
        self._model_id: int | None = None

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        from ..train import FineTuneObjective

        dev = next(model.parameters()).device
        if self._objective is None or self._model_id != id(model):
            self._objective = FineTuneObjective(model, max_len=self.crop_frames, estimate_sigma_data=False)
            self._model_id = id(model)
        self._objective.to(dev)
        return self._objective.per_utterance_loss(batch.to(dev))


OBJECTIVES: dict[str, Callable[..., Callable[[nn.Module, object], torch.Tensor]]] = {
    "styletts2": StyleTTS2Objective,
    "mel": lambda **kw: StyleTTS2Objective(weights={"mel": 5.0}, **kw),
    "text": lambda **kw: StyleTTS2Objective(weights={"dur": 1.0, "ce": 20.0, "diff": 1.0}, **kw),
    "finetune": lambda **kw: TrainerObjective(**kw),
}


def get_objective(name: str, **kwargs) -> Callable[[nn.Module, object], torch.Tensor]:
    """An objective by name: ``styletts2`` (all terms but adversarial ones), ``mel`` (mel reconstruction
    only), ``text`` (duration + diffusion terms only: no decoder pass, so decoder layers get no
    curvature; fast) or ``finetune`` (the adaptation trainer's own per-utterance loss)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name](**kwargs)
