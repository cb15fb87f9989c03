"""The aligner stage: the text aligner alone, CTC + s2s on whole utterances (the official auxiliary ASR
training, done here first so the first stage can align with it)."""

from __future__ import annotations

from ..objective.first_stage import AlignerObjective
from .stage_base import Stage


class AlignerStage(Stage):
    name = "aligner"
    trained = ("text_aligner",)
    optimised = ("text_aligner",)

    def objective(self, run):
        return AlignerObjective(run.model)

    def losses(self, run, objective, batch, step, mean, disc_opt):
        terms = objective.terms(batch)
        return terms, terms["ctc"] + terms["s2s"], {}
