"""The pre-training loop: aligner, first stage, second stage, each resumable on its own.

Layout of ``out``::

    config.yml              the model config (copied in; what the result is built from)
    pretrain.json           the settings and data fingerprint (a resumed run must match them)
    f0.safetensors          per-utterance F0 targets
    stages/<stage>/         step-*/ checkpoints, losses.jsonl, samples/, done.json when finished
    model.pth               the result in the official checkpoint format (load_official reads it)
    model.safetensors       the same weights as safetensors + JSON metadata

Each stage starts from the weights the previous one finished with (read from its final checkpoint),
so a run killed anywhere resumes exactly where it was. All randomness is seeded by ``(seed, step,
utterance id)`` or saved in the checkpoint. What differs between the stages (modules, objective, loss,
sample) is in one module per stage (:mod:`.stage_aligner`, :mod:`.stage_first`, :mod:`.stage_second`);
this module is the loop they share.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..alignment.recognizer import load_recognizer
from ..alignment.table import AlignmentTable
from ..data import Batch, FrameBudgetBatchSampler, TTSDataset, collate
from ..data.prepare import PreparedUtterance
from ..objective.f0_table import F0Table
from ..train.distributed import DistInfo, all_reduce_sum, shard, sum_gradients
from ..train.state import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint
from ..utils.io import write_json, write_text
from ..utils.seed import seed_everything
from .config import STAGES, PretrainConfig, PretrainConfigError, validate
from .fingerprint import STAGE_SETTINGS, fingerprint
from .stage_aligner import AlignerStage
from .stage_base import Stage
from .stage_first import FirstStage
from .stage_second import SecondStage

log = logging.getLogger(__name__)

STAGE_RUNNERS: dict[str, Stage] = {s.name: s for s in (AlignerStage(), FirstStage(), SecondStage())}


def _json_line(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class Pretrainer:
    def __init__(
        self,
        model: nn.Module,
        cfg: PretrainConfig,
        items: Sequence[PreparedUtterance],
        out: str | Path,
        *,
        dist: DistInfo | None = None,
        sample_items: Sequence[PreparedUtterance] = (),
        progress: bool = True,
    ) -> None:
        validate(cfg)
        self.model = model
        self.cfg = cfg
        self.items = list(items)
        self.out = Path(out)
        self.dist = dist or DistInfo()
        self.device = torch.device(cfg.device)
        self.progress = progress
        self.sample_items = list(sample_items)
        self.fingerprint = fingerprint(cfg, self.items, model.config)
        self.f0 = F0Table.build(
            self.items, self.out / "f0.safetensors", cfg.f0, model.sample_rate, progress and self.dist.main
        )
        self.dataset = TTSDataset(self.items, seed=cfg.seed, multispeaker=model.multispeaker)
        self.sampler = FrameBudgetBatchSampler(
            self.dataset.frame_lengths, max_frames=10**9, seed=cfg.seed, max_batch_size=cfg.batch_size
        )
        model.to(self.device)
        self.writer = None
        self._recognizer: nn.Module | None = None

    # -- bookkeeping -----------------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        return self.out / "stages" / stage

    def stage_fingerprint(self, stage: str, step: int) -> str:
        """The settings behind a stage's weights after ``step`` steps."""
        # the run part (recogniser and --init hashes) was computed once, in __init__
        return self.fingerprint + fingerprint(self.cfg, self.items, self.model.config, stage, step)

    def upstream(self, stage: str) -> dict[str, int]:
        """Step counts of the finished earlier stages a stage starts from: a stage trained on top of
        other weights (say, before the first stage was extended) is stale."""
        out = {}
        for earlier in STAGES[: STAGES.index(stage)]:
            done = self.stage_dir(earlier) / "done.json"
            if done.exists():
                out[earlier] = int(json.loads(done.read_text(encoding="utf-8"))["steps"])
        return out

    def _check_upstream(self, stage: str, recorded: dict | None, what: Path) -> None:
        if recorded is None:  # written before upstream stages were recorded
            return
        now = self.upstream(stage)
        if recorded != now:

            def steps(d: dict) -> str:
                return ", ".join(f"{k} {v} steps" for k, v in d.items()) or "nothing"

            raise ValueError(
                f"{what} was trained on top of {steps(recorded)}, but the earlier stages now hold "
                f"{steps(now)}: delete {self.stage_dir(stage)} to train the {stage} stage again on the new "
                "weights"
            )

    def stage_done(self, stage: str) -> bool:
        return (self.stage_dir(stage) / "done.json").exists()

    def _check_run(self) -> None:
        meta = self.out / "pretrain.json"
        if meta.exists():
            old = json.loads(meta.read_text(encoding="utf-8"))
            if old.get("fingerprint") != self.fingerprint:
                raise ValueError(
                    f"{self.out} holds a pre-training run with other settings, data or model config; "
                    "use a new --out folder (or delete it to start over)"
                )
        elif self.dist.main:
            write_json(meta, {"fingerprint": self.fingerprint, "settings": self.cfg.to_dict()})

    def _tensorboard(self):
        if self.writer is None and self.dist.main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tensorboard"))
            except Exception:  # tensorboard is optional (the ``train`` extra)
                self.writer = False
        return self.writer or None

    # -- data ------------------------------------------------------------------------------------------
    def batches(self, state: dict[str, int]) -> Iterator[Batch]:
        while True:
            order = self.sampler.batches(state["epoch"])
            self.dataset.set_epoch(state["epoch"])
            while state["position"] < len(order):
                indices = order[state["position"]]
                state["position"] += 1
                if len(indices) < 2:  # a lone long utterance: no batch statistics to speak of
                    continue
                yield shard(collate([self.dataset[i] for i in indices]), self.dist).to(self.device)
            state["epoch"] += 1
            state["position"] = 0

    # -- optimisers ------------------------------------------------------------------------------------
    def _optimizer(self, names: Sequence[str], stage: str) -> torch.optim.AdamW:
        groups = []
        for name in names:
            params = [p for p in getattr(self.model, name).parameters() if p.requires_grad]
            groups.append({"params": params, "name": name, "lr": self._base_lr(name, stage)})
        return torch.optim.AdamW(
            groups, betas=tuple(self.cfg.betas), weight_decay=self.cfg.weight_decay, eps=1e-9
        )

    def _set_lr(self, optimizers: dict, factor: float) -> None:
        """Every first-stage group at its base rate times ``factor`` (set from the step, so a resume needs
        no state)."""
        for opt in optimizers.values():
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = self._base_lr(group["name"], "first") * factor

    def _base_lr(self, name: str, stage: str) -> float:
        """One module's rate before any decay: the one place the stages' rates are chosen."""
        if stage == "aligner":
            return self.cfg.aligner_lr
        if name == "bert":
            return self.cfg.bert_lr
        if name in ("mpd", "msd"):
            return self.cfg.discriminator_lr
        return self.cfg.lr

    def _trainable(self, names: Sequence[str]) -> list[nn.Parameter]:
        self.model.requires_grad_(False)
        for name in names:
            getattr(self.model, name).requires_grad_(True)
        seen, out = set(), []
        for name in names:
            for p in getattr(self.model, name).parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def _restrict(self, names: Sequence[str], prefixes: Sequence[str]) -> list[nn.Parameter]:
        """Freeze every parameter of ``names`` outside the qualified-name ``prefixes``."""
        out = []
        for name in names:
            for key, p in getattr(self.model, name).named_parameters():
                full = f"{name}.{key}"
                p.requires_grad_(any(full == q or full.startswith(q + ".") for q in prefixes))
                if p.requires_grad:
                    out.append(p)
        if not out:
            raise PretrainConfigError(f"first_train_only {list(prefixes)} matches no first-stage parameter")
        return out

    # -- one stage -------------------------------------------------------------------------------------
    def run_stage(self, stage: str) -> dict[str, Any]:
        from ..utils.progress import progress_bar as tqdm

        cfg, m = self.cfg, self.model
        steps = cfg.stage_steps(stage)
        folder = self.stage_dir(stage)
        if (
            self.stage_done(stage)
            and json.loads((folder / "done.json").read_text(encoding="utf-8"))["steps"] < steps
        ):
            log.info("%s stage: extending the finished run to %d steps", stage, steps)
            if self.dist.main:
                (folder / "done.json").unlink()
        if self.stage_done(stage):
            done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
            self._check_upstream(stage, done.get("upstream"), folder / "done.json")
            if done.get("fingerprint") != self.stage_fingerprint(stage, int(done["steps"])):
                log.warning(
                    "%s stage finished earlier with other settings (%s); keeping its result (delete %s to "
                    "redo it)",
                    stage,
                    ", ".join(STAGE_SETTINGS[stage]),
                    folder,
                )
            latest = latest_checkpoint(folder / "checkpoints")
            if latest is not None:
                self._load_weights(latest)
            return done
        runner = STAGE_RUNNERS[stage]
        names = list(runner.optimised)
        params = self._trainable(names)
        if stage == "first" and cfg.first_train_only is not None:
            params = self._restrict(names, cfg.first_train_only)
        opt = self._optimizer(names, stage)
        disc_opt = None
        if stage == "first" and cfg.adv_start is not None:
            self._set_discriminators_trainable(True)
            disc_opt = self._optimizer(("mpd", "msd"), stage)
        optimizers = {"generator": opt, "discriminator": disc_opt}
        state = {"step": 0, "epoch": 0, "position": 0}
        latest = latest_checkpoint(folder / "checkpoints")
        if latest is not None:
            saved = json.loads((latest / "state.json").read_text(encoding="utf-8"))
            if saved.get("fingerprint") != self.stage_fingerprint(stage, int(saved["step"])):
                raise ValueError(
                    f"{latest} was written with other {stage}-stage settings "
                    f"({', '.join(STAGE_SETTINGS[stage])}, lr_decay once past its start, style_source); "
                    f"use the same flags to resume, or delete {folder} to redo this stage"
                )
            self._check_upstream(stage, saved.get("upstream"), latest)
            if disc_opt is not None and "discriminator" not in saved.get("optimizers", {}):
                # written before adversarial training was asked for (the fingerprint allows that only
                # at or before adv_start): MPD/MSD are still at their seeded initialisation
                self._set_discriminators_trainable(False)
                saved = load_checkpoint(latest, m, {"generator": opt})
                self._set_discriminators_trainable(True)
            else:
                saved = load_checkpoint(latest, m, optimizers)
            state = {k: int(saved[k]) for k in ("step", "epoch", "position")}
            m.diffusion.sigma_data = float(saved.get("sigma_data", m.diffusion.sigma_data))
            log.info("%s stage: resumed from %s (step %d)", stage, latest, state["step"])
        else:
            seed_everything(cfg.seed + STAGES.index(stage))
            runner.start(self)
        objective = runner.objective(self)
        self._set_modes(stage)
        history: list[dict[str, float]] = []
        losses_path = folder / "losses.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        if losses_path.exists():
            # lines a killed process logged after its last checkpoint describe steps that are redone now
            # (a kill during an append can also leave a torn last line: it is dropped, not fatal)
            kept = [
                r
                for r in map(_json_line, losses_path.read_text(encoding="utf-8").splitlines())
                if r is not None and r.get("step", 1 << 62) <= state["step"]
            ]
            history.extend(kept)
            if self.dist.main:
                write_text(losses_path, "".join(json.dumps(r) + "\n" for r in kept))
        bar = tqdm(
            total=steps,
            initial=state["step"],
            desc=f"pretrain {stage}",
            unit="step",
            disable=not (self.progress and self.dist.main),
        )
        t0, done_at_start = time.time(), state["step"]
        data = self.batches(state)
        unusable = 0
        while state["step"] < steps:
            batch = next(data)
            step = state["step"]
            # every step's global draws (dropout, the aligner's token masking) depend on (seed, stage,
            # step) alone, so a run resumed from any checkpoint continues exactly as it would have
            seed_everything(zlib.crc32(f"{cfg.seed}|{stage}|{step}".encode()))
            factor = runner.lr_factor(self, step)
            if factor is not None:
                self._set_lr(optimizers, factor)
            values = self._step(runner, objective, batch, step, params, opt, disc_opt)
            if values is None:
                unusable += 1
                if unusable >= 50:
                    raise ValueError(
                        f"{stage} stage: 50 batches in a row could not be used (utterances shorter than "
                        "the crop, or non-finite losses); use longer utterances or a shorter --max-len"
                    )
                continue
            unusable = 0
            state["step"] += 1
            bar.update(1)
            if state["step"] % cfg.log_every == 0 or state["step"] == steps:
                values["utt_per_s"] = (
                    (state["step"] - done_at_start) * cfg.batch_size / max(time.time() - t0, 1e-9)
                )
                bar.set_postfix(
                    {k: f"{v:.3f}" for k, v in values.items() if k in ("total", "mel", "ctc", "dur")}
                )
                if self.dist.main:
                    record = {"step": state["step"], **{k: round(v, 6) for k, v in values.items()}}
                    history.append(record)
                    with open(losses_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
                    tb = self._tensorboard()
                    if tb is not None:
                        for k, v in values.items():
                            tb.add_scalar(f"{stage}/{k}", v, state["step"])
            if self.dist.main and (state["step"] % cfg.save_every == 0 or state["step"] == steps):
                self._save(folder, optimizers, state)
            if self.dist.main and stage != "aligner" and state["step"] % cfg.sample_every == 0:
                self.write_sample(stage, state["step"])
        bar.close()
        summary = {
            "stage": stage,
            "steps": steps,
            "seconds": round(time.time() - t0, 1),
            "final": history[-1] if history else {},
            "sigma_data": float(m.diffusion.sigma_data),
            "fingerprint": self.stage_fingerprint(stage, steps),
            "upstream": self.upstream(stage),
        }
        if self.dist.main:
            if steps == 0:
                self._save(folder, optimizers, state)
            write_json(folder / "done.json", summary)
        return summary

    def _save(self, folder: Path, optimizers, state: dict[str, int]) -> None:
        stage = folder.name
        extra = {
            "fingerprint": self.stage_fingerprint(stage, state["step"]),
            "upstream": self.upstream(stage),
            "sigma_data": float(self.model.diffusion.sigma_data),
        }
        save_checkpoint(
            folder / "checkpoints" / f"step-{state['step']:07d}", self.model, optimizers, {**state, **extra}
        )
        prune_checkpoints(folder / "checkpoints", self.cfg.keep_checkpoints)

    def _set_discriminators_trainable(self, on: bool) -> None:
        for name in ("mpd", "msd"):
            getattr(self.model, name).requires_grad_(on).train(on)

    def _load_weights(self, checkpoint: Path) -> None:
        from ..utils.io import load_tensors

        weights, _ = load_tensors(checkpoint / "weights.safetensors")
        state = self.model.state_dict()
        with torch.no_grad():
            for k, v in weights.items():
                if k in state:
                    state[k].copy_(v)
        saved = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        self.model.diffusion.sigma_data = float(saved.get("sigma_data", self.model.diffusion.sigma_data))

    def alignment_table(self) -> AlignmentTable:
        """The frozen aligner's (or the recogniser's) paths for every utterance, recomputed only if the
        weights that made them changed."""
        return AlignmentTable.build(
            self.model,
            self.items,
            self.out / "alignments.safetensors",
            self.cfg.alignment,
            progress=self.progress and self.dist.main,
            recognizer=self.recognizer(),
        )

    def recognizer(self) -> nn.Module | None:
        """The phoneme recogniser of ``alignment="recognizer"``, loaded once; ``None`` otherwise."""
        if self.cfg.alignment != "recognizer":
            return None
        if self._recognizer is None:
            self._recognizer = load_recognizer(self.cfg.recognizer, str(self.device))
        return self._recognizer

    def _set_modes(self, stage: str) -> None:
        self.model.eval()
        for name in STAGE_RUNNERS[stage].optimised:  # the first stage's aligner learns from tma_start
            getattr(self.model, name).train()

    def _step(self, runner: Stage, objective, batch, step, params, opt, disc_opt) -> dict[str, float] | None:
        cfg = self.cfg
        global_size = len(batch) * self.dist.world if self.dist.active else len(batch)

        def mean(t: torch.Tensor) -> torch.Tensor:  # global-batch mean of per-utterance values
            return t.sum() / global_size

        out = runner.losses(self, objective, batch, step, mean, disc_opt)
        if out is None:
            return None
        terms, total, values = out
        stage = runner.name
        loss = mean(total)
        if not torch.isfinite(loss):
            log.warning("%s stage step %d: non-finite loss, batch skipped", stage, step)
            return None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sum_gradients(params, self.dist)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        for name, value in terms.items():
            values[name] = float(all_reduce_sum(value.detach().sum().reshape(1), self.dist)) / global_size
        values["total"] = float(all_reduce_sum(loss.detach().reshape(1), self.dist))
        return values

    # -- samples ---------------------------------------------------------------------------------------
    def write_sample(self, stage: str, step: int) -> None:
        """A listenable check: reconstruction (first stage) or text-to-speech (second stage)."""
        import soundfile as sf

        from ..utils.io import atomic_path

        if not self.sample_items:
            return
        item = self.sample_items[0]
        folder = self.stage_dir(stage) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        m = self.model
        was = {name: mod.training for name, mod in m.named_children()}
        m.eval()
        try:
            with torch.no_grad():
                wave = STAGE_RUNNERS[stage].sample(self, item)
        finally:
            for name, mod in m.named_children():
                mod.train(was[name])
        if wave is None:
            return
        with atomic_path(folder / f"step-{step:07d}.wav", suffix=".wav") as tmp:
            sf.write(str(tmp), np.clip(wave, -1, 1), m.sample_rate, subtype="PCM_16", format="WAV")
        tb = self._tensorboard()
        if tb is not None:
            tb.add_audio(f"{stage}/sample", torch.from_numpy(wave).unsqueeze(0), step, m.sample_rate)


def pretrain(
    model: nn.Module,
    cfg: PretrainConfig,
    items: Sequence[PreparedUtterance],
    out: str | Path,
    *,
    dist: DistInfo | None = None,
    sample_items: Sequence[PreparedUtterance] = (),
    progress: bool = True,
    stages: Sequence[str] = STAGES,
) -> Path:
    """Run (or resume) the stages and write the result; returns the official-format checkpoint."""
    from ..models.styletts2.checkpoint import save_official

    runner = Pretrainer(model, cfg, items, out, dist=dist, sample_items=sample_items, progress=progress)
    runner._check_run()
    summaries = {}
    for stage in stages:
        summaries[stage] = runner.run_stage(stage)
        log.info("%s stage: %s", stage, summaries[stage])
    result = Path(out) / "model.pth"
    if runner.dist.main:
        model.eval()
        save_official(model, result)
        from ..utils.io import save_tensors

        save_tensors(
            Path(out) / "model.safetensors",
            {k: v.detach().cpu() for k, v in model.state_dict().items()},
            metadata={
                "stages": summaries,
                "settings": cfg.to_dict(),
                "sigma_data": float(model.diffusion.sigma_data),
            },
        )
        write_json(Path(out) / "summary.json", {"stages": summaries, "settings": cfg.to_dict()})
    return result
