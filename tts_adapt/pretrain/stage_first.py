"""The first stage (official ``train_first.py``): reconstruction through the text encoder, the acoustic
style encoder and the decoder along the monotonic path, the text aligner joining from ``tma_start``
(TMA), and optionally the MPD/MSD adversarial terms from ``adv_start``."""

from __future__ import annotations

import torch

from ..alignment.paths import align_batch
from ..audio import log_energy
from ..data import collate
from ..objective.first_stage import FirstStageObjective, FirstStageWeights
from ..train.distributed import sum_gradients
from .stage_base import Stage


class FirstStage(Stage):
    name = "first"
    trained = ("text_encoder", "style_encoder", "decoder")
    # the text aligner is frozen until tma_start, but in the optimiser from the start
    optimised = (*trained, "text_aligner")

    def lr_factor(self, run, step):
        return run.cfg.first_lr_factor(step)

    def objective(self, run):
        m, cfg = run.model, run.cfg
        return FirstStageObjective(
            m,
            run.f0.crop,
            FirstStageWeights.from_config(m.config.get("loss_params")),
            max_len=cfg.max_len,
            seed=cfg.seed,
            alignment=cfg.alignment,
            alignments=run.alignment_table() if cfg.tma_start > 0 else None,
            style_source=cfg.style_source,
        )

    def losses(self, run, objective, batch, step, mean, disc_opt):
        cfg = run.cfg
        values = {}
        tma = step >= cfg.tma_start
        adversarial = cfg.adv_start is not None and step >= cfg.adv_start
        p = objective.generator_pass(batch, step, tma=tma)
        if p is None:
            return None
        if adversarial:
            d_loss = mean(objective.discriminator_loss(p))
            disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_params = [q for g in disc_opt.param_groups for q in g["params"]]
            sum_gradients(disc_params, run.dist)
            disc_opt.step()
            values["disc"] = float(d_loss.detach())
            if step >= cfg.adv_start + cfg.adv_warmup:  # warm-up: the discriminators learn alone
                objective.adversarial_terms(p)
        return p.terms, objective.total(p), values

    def sample(self, run, item):
        """The whole utterance through its monotonic path (aligner or recogniser), text encoder and
        decoder, true F0."""
        m = run.model
        batch = collate([run.dataset[run.items.index(item)]]).to(run.device)
        mels = batch.mels
        hard = align_batch(m, batch, run.cfg.alignment, run.recognizer())
        t_en = m.text_encoder(batch.tokens, batch.token_lengths, batch.text_mask)
        asr = t_en @ hard
        frames = hard.shape[-1]
        f0 = torch.from_numpy(run.f0.crop(item.id, 0, 2 * frames)).unsqueeze(0).to(mels)
        n = log_energy(mels[..., : 2 * frames])
        s = m.style_encoder(mels.unsqueeze(1))
        return m.decoder(asr, f0, n, s, deterministic=True).squeeze().cpu().numpy()
