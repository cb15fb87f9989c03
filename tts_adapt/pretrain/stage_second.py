"""The second stage (official ``train_second.py``): durations, prosody (F0 and energy), the prosodic
style encoder and style diffusion from ``diff_start``, on the first stage's frozen acoustic modules;
the decoder joins only with ``second_decoder``."""

from __future__ import annotations

from ..data.cache import load_features
from ..objective.finetune import FineTuneObjective, LossWeights
from .stage_base import Stage

TERMS = ("F0", "norm", "dur", "ce", "sty", "diff")


class SecondStage(Stage):
    name = "second"
    trained = ("bert", "bert_encoder", "predictor", "predictor_encoder", "diffusion")
    optimised = trained

    def start(self, run):
        if run.cfg.init is None:
            # official train_second.py: the prosodic style encoder starts as a copy of the acoustic
            # one (a run continuing given weights keeps their trained prosodic encoder)
            run.model.predictor_encoder.load_state_dict(run.model.style_encoder.state_dict())

    def objective(self, run):
        m, cfg = run.model, run.cfg
        return FineTuneObjective(
            m,
            LossWeights.from_config(m.config.get("loss_params")),
            max_len=cfg.second_max_len,
            f0_source="table",
            f0_table=run.f0.crop,
            seed=cfg.seed,
            alignments=run.alignment_table(),
        )

    def losses(self, run, objective, batch, step, mean, disc_opt):
        cfg = run.cfg
        p = objective.generator_pass(
            batch,
            step,
            diffusion=step >= cfg.diff_start,
            batch_mean=lambda t: t.detach().mean(),
            decoder=cfg.second_decoder,
        )
        if p is None:
            return None
        terms = {k: v for k, v in p.terms.items() if k in TERMS or (cfg.second_decoder and k == "mel")}
        return terms, sum(getattr(objective.weights, k) * v for k, v in terms.items()), {}

    def sample(self, run, item):
        """Text to speech in the utterance's own voice (its recording as the reference)."""
        from ..models.styletts2.inference import synthesize

        ref, _, _ = load_features(item.features)
        wave, _ = synthesize(run.model, "", reference=ref.numpy(), phonemes=item.phonemes, seed=0)
        return wave
