"""The StyleTTS 2 fine-tuning objective (second stage, as in the official ``train_finetune.py``).

Every term is computed *per utterance* (a ``[B]`` tensor) and the batch loss is their mean. That makes
the objective decompose over utterances, which gives two things the official batch-level code cannot:
multi-process training that equals single-process training on the same global batch, and per-utterance
losses for curvature (Fisher) estimation with the real training objective. Where the official code
pools over the batch (spectral-convergence norms, the TPRLS median) we pool per utterance instead.

All random choices (soft or hard attention, crop positions, diffusion noise and masks) come from
generators seeded by ``(seed, step, utterance id)``, so they do not depend on batch composition either.

A step is: :meth:`FineTuneObjective.generator_pass` (everything up to the generated waveform), the
discriminator update on :meth:`discriminator_loss`, then :meth:`adversarial_terms` with the updated
discriminators, and :meth:`total` to weight and sum.

A voice-pack model (Kokoro) has no style encoders, no sampler and no text aligner: each utterance's
style is its speaker's voice-pack row for its length (a learned voice for the target speaker, a stock
pack for the model's own voices), the same style for the whole utterance, as Kokoro synthesises; the
alignments must come from elsewhere (a recogniser, or exact durations); the terms are the
reconstruction (mel), durations (ce, dur), F0 and energy (norm), plus the adversarial terms only if
the model carries discriminators.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import log_energy
from ..data.dataset import Batch
from ..models.styletts2.alignment import length_mask_2d, monotonic_alignment
from ..models.styletts2.diffusion.sampler import ADPM2Sampler
from ..models.styletts2.voice_bank import voice_for_speaker
from ..text.tokenizer import length_to_mask
from .adversarial import discriminator_loss_per_utterance, generator_loss_per_utterance
from .crops import MIN_CROP_MEL_FRAMES, SAMPLES_PER_MEL_FRAME, crop_waves, decoder_crop_frames
from .frames import frame_mask
from .pitch import F0_SOURCES, TRACKERS, PyinTracker, jdc_f0
from .spectral import MultiResolutionMelLoss

__all__ = [
    "MIN_CROP_MEL_FRAMES",
    "SAMPLES_PER_MEL_FRAME",
    "TERMS",
    "FineTuneObjective",
    "GeneratorPass",
    "LossWeights",
    "decoder_crop_frames",
    "utterance_generator",
]

TERMS = ("mel", "gen", "slm", "mono", "s2s", "F0", "norm", "dur", "ce", "sty", "diff")


@dataclass
class LossWeights:
    """``loss_params`` of the official config (``lambda_*``)."""

    mel: float = 5.0
    gen: float = 1.0
    slm: float = 1.0
    mono: float = 1.0
    s2s: float = 1.0
    F0: float = 1.0
    norm: float = 1.0
    dur: float = 1.0
    ce: float = 20.0
    sty: float = 1.0
    diff: float = 1.0

    @classmethod
    def from_config(cls, loss_params: dict | None) -> LossWeights:
        params = loss_params or {}
        return cls(**{t: float(params.get(f"lambda_{t}", getattr(cls, t))) for t in TERMS})


@dataclass
class GeneratorPass:
    """What one forward computes; ``terms`` maps a loss name to per-utterance values ``[B]``."""

    real: torch.Tensor | None  # [B, 1, S] ground-truth crops (None: text-side terms only)
    generated: torch.Tensor | None  # [B, 1, S] decoder output on predicted F0/energy (None: no decoder)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    sigma_data: float | None = None
    crop_frames: int = 0
    s_trg: torch.Tensor | None = None  # whole-utterance styles (targets of the diffusion)
    ref: torch.Tensor | None = None  # reference styles from the same speaker (diffusion features)
    # decoder output on ground-truth F0/energy, computed only when asked (SLM discriminator regularisers)
    reconstruct: Callable[[], torch.Tensor] | None = None


def _has(model: nn.Module, name: str) -> bool:
    return model.has_module(name) if hasattr(model, "has_module") else hasattr(model, name)


def utterance_generator(seed: int, step: int, uid: str) -> torch.Generator:
    """A CPU generator that depends only on the run seed, the step and the utterance id."""
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}|{step}|{uid}".encode()))


class FineTuneObjective(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        weights: LossWeights | None = None,
        max_len: int = 200,
        f0_source: str = "jdc",
        seed: int = 0,
        slm: nn.Module | None = None,
        estimate_sigma_data: bool = True,
        embedding_mask_proba: float | None = None,
        f0_table: Callable[[str, int, int], np.ndarray] | None = None,
        alignments: Callable[[Batch], torch.Tensor] | None = None,
        voice_of: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.voice_packs = bool(getattr(model, "uses_voice_packs", False))
        self.voice_of = dict(voice_of or {})
        if f0_source not in (*F0_SOURCES, "table"):
            raise ValueError(
                f"f0_source must be one of {', '.join(F0_SOURCES)} or 'table', got {f0_source!r}"
            )
        if (f0_source == "table") != (f0_table is not None):
            raise ValueError("f0_source 'table' and f0_table go together")
        untrained = set((getattr(model, "config", None) or {}).get("untrained_modules") or ())
        if f0_source == "jdc" and self.voice_packs:
            raise ValueError(
                "this model has no pitch extractor: use --f0 yin or --f0 pyin for the F0 targets"
            )
        if f0_source == "jdc" and "pitch_extractor" in untrained:
            raise ValueError(
                "this model has no trained pitch extractor (its config lists it under untrained_modules): "
                "use --f0 pyin for the F0 targets"
            )
        self.f0_table = f0_table
        # cached monotonic paths of a frozen aligner (pre-training's second stage), or the recogniser's
        # paths a base model's config names (its decoder learned on those): no aligner pass, no s2s/mono
        if alignments is None:
            from ..alignment.paths import recognizer_paths_from_config

            alignments = recognizer_paths_from_config(model)
        if alignments is None and self.voice_packs:
            raise ValueError(
                "this model has no text aligner: name an alignment recogniser in its config "
                "(alignment_recognizer), or give the alignments"
            )
        self.alignments = alignments
        self.model = model
        self.weights = weights or LossWeights()
        self.max_len = int(max_len)
        self.f0_source = f0_source
        self.seed = int(seed)
        self.slm = slm
        self.estimate_sigma_data = estimate_sigma_data
        if embedding_mask_proba is not None:
            self.embedding_mask_proba = float(embedding_mask_proba)
        else:
            diffusion = getattr(model, "diffusion", None)
            self.embedding_mask_proba = diffusion.embedding_mask_proba if diffusion is not None else 0.0
        self.mel_loss = MultiResolutionMelLoss(getattr(model, "sample_rate", 24000))
        self._pyin = (
            PyinTracker(getattr(model, "sample_rate", 24000), method=f0_source)
            if f0_source in TRACKERS
            else None
        )

    # -- pieces --------------------------------------------------------------------------------------
    def _align(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text aligner: soft attention, its monotonic path, s2s logits (per utterance masks)."""
        m = self.model
        frames = batch.mel_lengths // 2
        padded = length_to_mask(frames, batch.mels.shape[-1] // 2)
        _, s2s_logits, s2s_attn = m.text_aligner(batch.mels, padded, batch.tokens)
        attn = s2s_attn[:, 1:, :]  # the first row belongs to the start-of-sequence step
        valid = length_mask_2d(batch.token_lengths, frames, attn.shape[1], attn.shape[2])
        hard = monotonic_alignment(attn * valid, batch.token_lengths, frames)
        return attn, hard, s2s_logits, valid

    def _global_styles(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Acoustic and prosodic style of each whole utterance, one at a time as officially (the pooling
        is global, so padding must stay out). The acoustic style is only the detached diffusion target,
        so it runs without a graph. Each call declares its row for per-utterance curvature."""
        acoustic, prosodic = [], []
        for b in range(len(batch)):
            mel = batch.mels[b : b + 1, :, : int(batch.mel_lengths[b])].unsqueeze(1)
            with frame_mask(utterances=[b]):
                prosodic.append(self.model.predictor_encoder(mel))
                with torch.no_grad():
                    acoustic.append(self.model.style_encoder(mel))
        return torch.cat(acoustic), torch.cat(prosodic)

    def _voice_styles(self, batch: Batch) -> torch.Tensor:
        """``[B, 2S]``: each utterance's voice-pack row for its text length (boundary tokens excluded)."""
        voices = self.model.voices
        names = [voice_for_speaker(spk, voices.names(), self.voice_of) for spk in batch.speakers]
        return voices.styles(names, batch.token_lengths - 2).to(batch.mels)

    def _diffusion_terms(
        self,
        batch: Batch,
        gens: list[torch.Generator],
        step: int,
        bert_dur: torch.Tensor,
        s_trg: torch.Tensor,
        batch_mean: Callable[[torch.Tensor], torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], float, torch.Tensor]:
        m = self.model
        with torch.no_grad():
            ref = m.compute_style(batch.ref_mels) if getattr(m, "multispeaker", True) else None
        sigma = None
        if self.estimate_sigma_data:
            # the official per-batch estimate, as a mean of per-utterance values so processes can agree
            sigma = float(batch_mean(s_trg.std(dim=-1)))
            m.diffusion.sigma_data = sigma
        width = s_trg.shape[-1]
        num_steps = 3 + int(torch.randint(2, (1,), generator=utterance_generator(self.seed, step, "")))
        dist = m.diffusion.diffusion.sigma_distribution
        noise, step_noises, mask_s, mask_l, sig, loss_noise = [], [], [], [], [], []
        calls = ADPM2Sampler.calls(num_steps)
        for g in gens:
            noise.append(torch.randn(1, 1, width, generator=g))
            step_noises.append(torch.randn(num_steps - 1, 1, 1, width, generator=g))
            # officially the sampler's text mask is drawn anew at every denoiser call
            mask_s.append(torch.rand(calls, generator=g) < self.embedding_mask_proba)
            mask_l.append(bool(torch.rand(1, generator=g) < self.embedding_mask_proba))
            sig.append(float(torch.exp(dist.mean + dist.std * torch.randn(1, generator=g))))
            loss_noise.append(torch.randn(1, 1, width, generator=g))
        dev, dt = s_trg.device, s_trg.dtype
        s_preds = m.diffusion.sample(
            noise=torch.cat(noise).to(dev, dt),
            embedding=bert_dur,
            features=ref,
            num_steps=num_steps,
            embedding_scale=1.0,
            step_noises=torch.cat(step_noises, dim=1).to(dev, dt),
            embedding_mask=torch.stack(mask_s, dim=1).to(dev),
        ).squeeze(1)
        diff = m.diffusion.loss(
            s_trg,
            bert_dur,
            ref,
            noise=torch.cat(loss_noise).to(dev, dt),
            sigmas=torch.tensor(sig, device=dev, dtype=dt),
            embedding_mask=torch.tensor(mask_l, device=dev),
            reduction="none",
        )
        sty = (s_preds - s_trg).abs().mean(dim=-1)
        return {"sty": sty, "diff": diff}, sigma, ref

    def _f0_targets(self, batch: Batch, gt: torch.Tensor, starts: list[int], crop: int) -> torch.Tensor:
        if self.f0_source == "jdc":
            return jdc_f0(self.model.pitch_extractor, gt)
        if self.f0_table is not None:
            rows = [self.f0_table(uid, 2 * start, 2 * crop) for uid, start in zip(batch.ids, starts)]
            return torch.from_numpy(np.stack(rows)).to(gt)
        rows = []
        for b, start in enumerate(starts):
            wave = batch.waves[b, : int(batch.wave_lengths[b])].detach().cpu().numpy()
            rows.append(self._pyin.crop(batch.ids[b], wave, 2 * start, 2 * crop))
        return torch.from_numpy(np.stack(rows)).to(gt)

    # -- the pass ------------------------------------------------------------------------------------
    def generator_pass(
        self,
        batch: Batch,
        step: int,
        crop_frames: int | None = None,
        diffusion: bool = True,
        batch_mean: Callable[[torch.Tensor], torch.Tensor] = lambda t: t.detach().mean(),
        acoustic: bool = True,
        decoder: bool = True,
    ) -> GeneratorPass | None:
        """Forward through every generator-side module; ``None`` when the batch is too short to crop.

        ``decoder=False`` stops before the waveform (no ``mel`` term, ``generated`` is ``None``): the
        prosody-only second stage of pre-training, where the decoder is frozen from the first stage.

        When a global batch is split across processes, ``crop_frames`` must be computed on the global
        batch (:func:`decoder_crop_frames`) and ``batch_mean`` must average per-utterance values over it.
        ``acoustic=False`` stops before the decoder crop (text-side terms only: ``s2s``, ``mono``,
        ``dur``, ``ce`` and, with ``diffusion``, ``sty`` and ``diff``; ``real``/``generated`` are None).

        Padded text positions are declared with :func:`~tts_adapt.objective.frames.frame_mask` around
        the text-side modules, so curvature statistics leave them out; outside a curvature pass the
        declarations do nothing.
        """
        m = self.model
        crop = (
            decoder_crop_frames(batch.mel_lengths, self.max_len) if crop_frames is None else int(crop_frames)
        )
        if 2 * crop < MIN_CROP_MEL_FRAMES:
            return None
        gens = [utterance_generator(self.seed, step, uid) for uid in batch.ids]
        tokens, lengths, text_mask = batch.tokens, batch.token_lengths, batch.text_mask

        if self.alignments is not None:
            attn = hard = self.alignments(batch).to(batch.mels)
            s2s_logits = None
        else:
            attn, hard, s2s_logits, _ = self._align(batch)
        t_en = m.text_encoder(tokens, lengths, text_mask)
        use_soft = torch.tensor([bool(torch.randint(2, (1,), generator=g)) for g in gens], device=attn.device)
        asr = t_en @ torch.where(use_soft.view(-1, 1, 1), attn, hard)
        d_gt = hard.sum(dim=-1).detach()

        if self.voice_packs:
            ref_s = self._voice_styles(batch)
            voice_acoustic, prosodic = ref_s.split(ref_s.shape[-1] // 2, dim=-1)
            s_trg = ref_s.detach()
            diffusion = False
        else:
            global_acoustic, prosodic = self._global_styles(batch)
            s_trg = torch.cat([global_acoustic, prosodic], dim=-1).detach()
        terms: dict[str, torch.Tensor] = {}
        sigma = ref = None
        with frame_mask(~text_mask):
            bert_dur = m.bert(tokens, attention_mask=(~text_mask).int())
            d_en = m.bert_encoder(bert_dur).transpose(-1, -2)
            if diffusion:
                diff_terms, sigma, ref = self._diffusion_terms(batch, gens, step, bert_dur, s_trg, batch_mean)
                terms.update(diff_terms)
            dur_logits, p = m.predictor(d_en, prosodic, lengths, hard, text_mask)
        terms["ce"], terms["dur"] = self._duration_terms(dur_logits, d_gt, lengths)
        if s2s_logits is not None:
            terms["s2s"] = torch.stack(
                [
                    F.cross_entropy(s2s_logits[b, : int(lengths[b])], tokens[b, : int(lengths[b])])
                    for b in range(len(batch))
                ]
            )
            terms["mono"] = (attn - hard).abs().flatten(1).mean(-1) * 10
        if not acoustic:
            return GeneratorPass(None, None, terms, sigma, crop, s_trg, ref)

        starts, en, p_en, gt = [], [], [], []
        for b, g in enumerate(gens):
            frames = int(batch.mel_lengths[b]) // 2
            start = int(torch.randint(frames - crop, (1,), generator=g))
            starts.append(start)
            en.append(asr[b, :, start : start + crop])
            p_en.append(p[b, :, start : start + crop])
            gt.append(batch.mels[b, :, 2 * start : 2 * (start + crop)])
        en, p_en, gt = torch.stack(en), torch.stack(p_en), torch.stack(gt).detach()
        rows = range(len(batch))
        real = crop_waves(batch.waves, batch.wave_lengths, rows, starts, crop).unsqueeze(1).detach()

        if self.voice_packs:  # the utterance's voice, for its whole length (as Kokoro speaks)
            s, s_dur = voice_acoustic, prosodic
        else:
            s = m.style_encoder(gt.unsqueeze(1))
            s_dur = m.predictor_encoder(gt.unsqueeze(1))
        f0_real = self._f0_targets(batch, gt, starts, crop)
        n_real = log_energy(gt).detach()
        f0_fake, n_fake = m.predictor.F0Ntrain(p_en, s_dur)
        generated = None
        if decoder:
            sources = [utterance_generator(self.seed, step, f"{uid}/source") for uid in batch.ids]
            generated = m.decoder(en, f0_fake, n_fake, s, generators=sources)

        terms["F0"] = F.smooth_l1_loss(f0_fake, f0_real, reduction="none").mean(-1) / 10
        terms["norm"] = F.smooth_l1_loss(n_fake, n_real, reduction="none").mean(-1)
        if generated is not None:
            terms["mel"] = self.mel_loss(generated, real)
        rec_inputs = (en.detach(), f0_real.detach(), n_real, s.detach())

        def reconstruct() -> torch.Tensor:
            with torch.no_grad():
                gens = [utterance_generator(self.seed, step, f"{uid}/source-rec") for uid in batch.ids]
                return m.decoder(*rec_inputs, generators=gens)

        return GeneratorPass(
            real=real,
            generated=generated,
            terms=terms,
            sigma_data=sigma,
            crop_frames=crop,
            s_trg=s_trg,
            ref=ref,
            reconstruct=reconstruct,
        )

    @staticmethod
    def _duration_terms(
        logits: torch.Tensor, d_gt: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per utterance: BCE of the "at least k frames" targets, and L1 of the expected durations."""
        ce, dur = [], []
        for b in range(logits.shape[0]):
            n = int(lengths[b])
            pred = logits[b, :n]
            target_len = d_gt[b, :n].long()
            target = (torch.arange(pred.shape[-1], device=pred.device)[None, :] < target_len[:, None]).to(
                pred
            )
            ce.append(F.binary_cross_entropy_with_logits(pred.flatten(), target.flatten()))
            expected = torch.sigmoid(pred).sum(-1)
            # the start and end tokens are excluded, as officially
            dur.append(F.l1_loss(expected[1 : n - 1], target_len[1 : n - 1].to(pred)))
        return torch.stack(ce), torch.stack(dur)

    # -- adversarial ---------------------------------------------------------------------------------
    def discriminator_loss(self, p: GeneratorPass) -> torch.Tensor:
        """MPD + MSD loss per utterance on detached generated audio."""
        real, fake = p.real.detach(), p.generated.detach()
        return discriminator_loss_per_utterance(self.model.mpd(real, fake), self.model.msd(real, fake))

    @property
    def adversarial(self) -> bool:
        """Whether MPD/MSD enter the loss (``lambda_gen != 0``); otherwise nobody needs to run them."""
        if self.weights.gen != 0 and not _has(self.model, "mpd"):
            raise ValueError(
                "loss_params.lambda_gen is not 0 but this model has no discriminators (MPD/MSD): set "
                "lambda_gen: 0 in its config"
            )
        return self.weights.gen != 0

    def adversarial_terms(self, p: GeneratorPass) -> None:
        """Adds ``gen`` (and ``slm`` when a speech LM is configured) to ``p.terms``; call after the D step.
        With ``lambda_gen = 0`` the discriminators are not run: the term would add exactly nothing."""
        m = self.model
        if self.adversarial:
            real, fake = p.real, p.generated
            p.terms["gen"] = generator_loss_per_utterance(m.mpd(real, fake), m.msd(real, fake))
        if self.slm is not None:
            p.terms["slm"] = self.slm.feature_loss(p.real, p.generated)

    def total(self, p: GeneratorPass) -> torch.Tensor:
        """Weighted sum per utterance ``[B]`` (``lambda_*`` from the config)."""
        out = None
        for name, value in p.terms.items():
            weighted = getattr(self.weights, name) * value
            out = weighted if out is None else out + weighted
        return out

    def per_utterance_loss(self, batch: Batch, step: int = 0) -> torch.Tensor:
        """The generator objective per utterance without any update (for curvature estimation)."""
        p = self.generator_pass(batch, step, diffusion=True)
        if p is None:
            raise ValueError(
                f"batch {batch.ids[:3]} is too short for a {MIN_CROP_MEL_FRAMES}-frame decoder crop"
            )
        self.adversarial_terms(p)
        return self.total(p)
