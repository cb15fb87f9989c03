"""The pre-training losses that the fine-tuning objective does not have: the text aligner's own
training and StyleTTS 2's first stage (reconstruction), as in the official ``train_first.py``.

* :class:`AlignerObjective`: the official auxiliary ASR's loss, CTC on the frame classifier plus the
  attention decoder's cross-entropy (teacher forcing). It trains the aligner from scratch when no
  pre-trained one exists; the official recipe starts from one trained on LibriTTS.
* :class:`FirstStageObjective`: the decoder reconstructs a waveform crop from the aligned text
  features, the ground-truth F0 and energy and the acoustic style of *another* segment of the same
  utterance (official), or of another utterance of the same voice (``style_source="reference"``: the
  style can then carry only what the voice's utterances share, which is what a zero-shot reference
  gives at synthesis). Before ``tma`` only the mel loss trains (the aligner is frozen and the official
  weight of the mel term is 1); with ``tma`` the aligner trains through the reconstruction (soft or monotonic
  attention, half the time each) and the s2s and monotonic terms join, with ``lambda_mel`` on the mel
  term; with ``adversarial`` the MPD/MSD generator and feature-matching terms join.

Every term is per utterance (``[B]``), as in the fine-tuning objective, and every random choice comes
from a generator seeded by ``(seed, step, utterance id)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..alignment.paths import aligner_padding, ctc_alignment_scores
from ..audio import log_energy
from ..data.dataset import Batch
from ..models.styletts2.alignment import length_mask_2d, monotonic_alignment
from .adversarial import discriminator_loss_per_utterance, generator_loss_per_utterance
from .finetune import SAMPLES_PER_MEL_FRAME, utterance_generator
from .spectral import MultiResolutionLogSTFTLoss, MultiResolutionMelLoss

# "recognizer": paths from a trained phoneme recogniser, cached before TMA (tts_adapt.alignment);
# once the aligner trains through the reconstruction (TMA) its own attention gives the path, as officially.
ALIGNMENT_SOURCES = ("attention", "ctc", "recognizer")
STYLE_SOURCES = ("segment", "reference")  # where the first stage takes the acoustic style from


@dataclass
class FirstStageWeights:
    """``loss_params`` of the official first stage."""

    mel: float = 5.0
    gen: float = 1.0
    mono: float = 1.0
    s2s: float = 1.0
    stft: float = (
        0.0  # ours: a log linear-STFT term beside the mel loss (spectral.MultiResolutionLogSTFTLoss)
    )

    @classmethod
    def from_config(cls, loss_params: dict | None) -> FirstStageWeights:
        p = loss_params or {}
        terms = ("mel", "gen", "mono", "s2s", "stft")
        return cls(**{t: float(p.get(f"lambda_{t}", getattr(cls, t))) for t in terms})


@dataclass
class ReconstructionPass:
    real: torch.Tensor  # [B, 1, S]
    generated: torch.Tensor  # [B, 1, S]
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    crop_frames: int = 0


def per_utterance_s2s(logits: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the attention decoder's token predictions, one value per utterance."""
    return torch.stack(
        [
            F.cross_entropy(logits[b, : int(lengths[b])], tokens[b, : int(lengths[b])])
            for b in range(len(lengths))
        ]
    )


def per_utterance_ctc(
    ctc_logits: torch.Tensor, tokens: torch.Tensor, token_lengths: torch.Tensor, mel_lengths: torch.Tensor
) -> torch.Tensor:
    """CTC of the frame classifier against the token sequence without its start/end pads (blank = 0)."""
    logp = ctc_logits.log_softmax(-1).transpose(0, 1)  # [T', B, V]
    in_len = (mel_lengths + 1) // 2
    targets = [tokens[b, 1 : int(token_lengths[b]) - 1] for b in range(len(token_lengths))]
    tgt_len = torch.tensor([len(t) for t in targets], dtype=torch.long)
    loss = F.ctc_loss(
        logp,
        torch.cat(targets),
        in_len.clamp(max=logp.shape[0]),
        tgt_len,
        blank=0,
        reduction="none",
        zero_infinity=True,
    )
    return loss / tgt_len.clamp(min=1).to(loss)


class AlignerObjective(nn.Module):
    """CTC + s2s on whole utterances (the official auxiliary ASR training)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        mask = aligner_padding(batch.mel_lengths, batch.mels.shape[-1])
        ctc_logits, s2s_logits, _ = self.model.text_aligner(batch.mels, mask, batch.tokens)
        return {
            "ctc": per_utterance_ctc(ctc_logits, batch.tokens, batch.token_lengths, batch.mel_lengths),
            "s2s": per_utterance_s2s(s2s_logits, batch.tokens, batch.token_lengths),
        }


class FirstStageObjective(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        f0: Callable[[str, int, int], np.ndarray],
        weights: FirstStageWeights | None = None,
        max_len: int = 48,
        seed: int = 0,
        alignment: str = "attention",
        alignments: Callable[[Batch], torch.Tensor] | None = None,
        style_source: str = "segment",
    ) -> None:
        """``f0(uid, start_frame, frames)`` gives ground-truth F0 in Hz for a mel-frame window;
        ``alignments(batch)``, when given, supplies the frozen aligner's monotonic paths before TMA
        (see :mod:`tts_adapt.alignment`), so the aligner does not run at all then."""
        super().__init__()
        if alignment not in ALIGNMENT_SOURCES:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENT_SOURCES)}, got {alignment!r}")
        if style_source not in STYLE_SOURCES:
            raise ValueError(f"style_source must be one of {', '.join(STYLE_SOURCES)}, got {style_source!r}")
        self.model = model
        self.f0 = f0
        self.style_source = style_source
        self.weights = weights or FirstStageWeights()
        self.max_len = int(max_len)
        self.seed = int(seed)
        self.alignment = alignment
        self.alignments = alignments
        self.mel_loss = MultiResolutionMelLoss(getattr(model, "sample_rate", 24000))
        self.stft_loss = MultiResolutionLogSTFTLoss() if self.weights.stft else None

    def _align(self, batch: Batch, tma: bool, step: int):
        m = self.model
        frames = batch.mel_lengths // 2
        mask = aligner_padding(batch.mel_lengths, batch.mels.shape[-1])
        # The aligner masks random input tokens even in eval mode (official); its draws come from the
        # global RNG, so they are tied to (seed, step, batch) here and leave the caller's RNG alone.
        seed = zlib.crc32(f"{self.seed}|{step}|aligner|{'|'.join(batch.ids)}".encode())
        devices = [batch.mels.device] if batch.mels.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.set_grad_enabled(tma and torch.is_grad_enabled()):
            torch.manual_seed(seed)
            ctc_logits, s2s_logits, s2s_attn = m.text_aligner(batch.mels, mask, batch.tokens)
        attn = s2s_attn[:, 1:, :]  # the first row belongs to the start-of-sequence step
        valid = length_mask_2d(batch.token_lengths, frames, attn.shape[1], attn.shape[2])
        attn = attn * valid
        scores = attn if self.alignment != "ctc" else ctc_alignment_scores(ctc_logits, batch.tokens)
        hard = monotonic_alignment(scores * valid, batch.token_lengths, frames)
        return attn, hard, s2s_logits

    def generator_pass(self, batch: Batch, step: int, tma: bool = True) -> ReconstructionPass | None:
        """Reconstruct one crop per utterance; ``None`` when the batch is too short to crop."""
        m = self.model
        half = batch.mel_lengths // 2
        crop = int(min(int(half.min()) - 1, self.max_len // 2))
        style_len = int(half.min()) - 1
        if self.style_source == "reference":
            style_len = int(batch.ref_mel_lengths.min()) // 2  # no padding enters the style encoder
        if crop < 4 or style_len < 4:
            return None
        gens = [utterance_generator(self.seed, step, uid) for uid in batch.ids]
        t_en = m.text_encoder(batch.tokens, batch.token_lengths, batch.text_mask)
        use_soft = [bool(torch.randint(2, (1,), generator=g)) for g in gens]
        if self.alignments is not None and not tma:
            # frozen aligner: its monotonic path only (the soft attention is not cached)
            attn = hard = self.alignments(batch).to(t_en)
            s2s_logits = None
            asr = t_en @ hard
        else:
            attn, hard, s2s_logits = self._align(batch, tma, step)
            soft = torch.tensor(use_soft, device=attn.device).view(-1, 1, 1)
            asr = t_en @ torch.where(soft, attn, hard.to(attn))

        en, gt, st, real, f0 = [], [], [], [], []
        samples = 2 * crop * SAMPLES_PER_MEL_FRAME
        for b, g in enumerate(gens):
            frames = int(half[b])
            start = int(torch.randint(frames - crop, (1,), generator=g))
            en.append(asr[b, :, start : start + crop])
            gt.append(batch.mels[b, :, 2 * start : 2 * (start + crop)])
            s0 = 2 * start * SAMPLES_PER_MEL_FRAME
            piece = batch.waves[b, s0 : min(s0 + samples, int(batch.wave_lengths[b]))]
            real.append(F.pad(piece, (0, samples - piece.shape[-1])))  # never past the wave's end
            f0.append(torch.from_numpy(self.f0(batch.ids[b], 2 * start, 2 * crop)))
            if self.style_source == "reference":
                # another utterance of the same voice: the batch's (official) style reference
                room = int(batch.ref_mel_lengths[b]) - 2 * style_len
                s_start = int(torch.randint(room + 1, (1,), generator=g))
                st.append(batch.ref_mels[b, :, s_start : s_start + 2 * style_len])
            else:
                # another segment of the same utterance (official, multi-speaker)
                s_start = int(torch.randint(frames - style_len, (1,), generator=g))
                st.append(batch.mels[b, :, 2 * s_start : 2 * (s_start + style_len)])
        en, gt, st = torch.stack(en), torch.stack(gt).detach(), torch.stack(st).detach()
        real = torch.stack(real).unsqueeze(1).detach()
        f0_real = torch.stack(f0).to(gt)
        n_real = log_energy(gt).detach()
        s = m.style_encoder(st.unsqueeze(1) if m.multispeaker else gt.unsqueeze(1))
        sources = [utterance_generator(self.seed, step, f"{uid}/source") for uid in batch.ids]
        generated = m.decoder(en, f0_real, n_real, s, generators=sources)
        terms = {"mel": self.mel_loss(generated, real)}
        if self.stft_loss is not None:
            terms["stft"] = self.stft_loss(generated, real)
        if tma:
            terms["s2s"] = per_utterance_s2s(s2s_logits, batch.tokens, batch.token_lengths)
            terms["mono"] = (attn - hard.to(attn)).abs().flatten(1).mean(-1) * 10
        return ReconstructionPass(real=real, generated=generated, terms=terms, crop_frames=crop)

    # -- adversarial: the fine-tuning objective's per-utterance MPD/MSD losses ------------------------
    def discriminator_loss(self, p: ReconstructionPass) -> torch.Tensor:
        real, fake = p.real.detach(), p.generated.detach()
        m = self.model
        return discriminator_loss_per_utterance(m.mpd(real, fake), m.msd(real, fake))

    def adversarial_terms(self, p: ReconstructionPass) -> None:
        m = self.model
        p.terms["gen"] = generator_loss_per_utterance(m.mpd(p.real, p.generated), m.msd(p.real, p.generated))

    def total(self, p: ReconstructionPass) -> torch.Tensor:
        """Official weighting: the bare mel loss while it trains alone, ``lambda_*`` on every term once
        others join (TMA's s2s/mono, the adversarial ``gen``), so ``lambda_mel : lambda_gen`` holds
        whether the adversarial terms start with TMA (official) or without it."""
        if set(p.terms) == {"mel"}:
            return p.terms["mel"]
        if set(p.terms) == {"mel", "stft"}:  # the same bare mel loss, the STFT term at its ratio to it
            return p.terms["mel"] + self.weights.stft / self.weights.mel * p.terms["stft"]
        return sum(getattr(self.weights, name) * value for name, value in p.terms.items())
