"""The adaptation loop: one optimiser step per (accumulated) global batch, official update order.

Per step: generator pass; discriminator loss, backward, discriminator step; adversarial terms with the
updated discriminators; weighted generator loss plus the prior penalty, backward, generator step.
Everything that makes a run reproducible lives in the checkpoint (weights, Adam moments, RNG states,
data position, sigma_data history), so a killed run resumes onto exactly the same trajectory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Batch, FrameBudgetBatchSampler, RandomBatchSampler, TTSDataset, collate
from ..data.dataset import model_vocab
from ..data.ood import read_ood_texts
from ..data.prepare import PreparedUtterance
from ..objective.crops import decoder_crop_frames
from ..objective.finetune import FineTuneObjective, LossWeights
from ..objective.modes import set_training_modes
from ..utils.seed import seed_everything
from .amp import LossScaling
from .config import TrainConfig, validate
from .distributed import DistInfo, all_reduce_sum, any_true, shard, sum_gradients
from .methods import MethodSetup, describe_counts, discriminators, idle_components, setup_method
from .optim import build_optimizer
from .resolve import short_crop
from .slm_adversarial import SLMAdversarial, SLMAdversarialSettings, scale_predictor_gradients
from .state import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint

log = logging.getLogger(__name__)

# Modules the SLM-adversarial generator update steps (the official choice).
SLM_UPDATED = ("bert_encoder", "bert", "predictor", "diffusion")
# Settings that may change between a run and its resumption.
EPHEMERAL = (
    "steps",
    "log_every",
    "save_every",
    "sample_every",
    "keep_checkpoints",
    "device",
    "nan_patience",
    "curvature_any_weights",  # a check, not a setting: the run is the same either way
)


class NonFiniteLossError(RuntimeError):
    """Too many consecutive batches with NaN/Inf losses or gradients."""


@dataclass
class StepResult:
    step: int
    losses: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None
    utterances: int = 0


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        items: Sequence[PreparedUtterance],
        out_dir: str | Path,
        *,
        weights: LossWeights | None = None,
        sample_item: PreparedUtterance | None = None,
        dist: DistInfo | None = None,
        slm: nn.Module | None = None,
        run_info: dict[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        self.dist = dist or DistInfo()
        validate(cfg, world=self.dist.world, short_crop=short_crop(getattr(model, "config", None)))
        if cfg.no_slm:
            slm = None
        self.cfg = cfg
        self.model = model
        self.out = Path(out_dir)
        self.device = torch.device(cfg.device)
        self.progress = progress
        self.run_info = run_info or {}
        self.sample_item = sample_item
        self.voice_name = self._add_target_voice(items) if getattr(model, "uses_voice_packs", False) else None
        self.setup: MethodSetup = setup_method(model, cfg)
        model.to(self.device)
        if self.setup.prior is not None:
            self.setup.prior.to(self.device)
        voice_of = {spk: self.voice_name for spk in self.target_speakers} if self.voice_name else None
        self.objective = FineTuneObjective(
            model,
            weights,
            cfg.max_len,
            cfg.f0,
            cfg.seed,
            slm,
            estimate_sigma_data=cfg.estimate_sigma_data,
            voice_of=voice_of,
        ).to(self.device)
        # lambda_gen = 0 (e.g. a base model whose discriminators were never trained): MPD/MSD add
        # nothing to the generator's loss, so neither they nor their update are computed
        self.adversarial = self.objective.adversarial
        if not self.adversarial:
            log.info("lambda_gen = 0: no MPD/MSD pass, no discriminator update, no adversarial term")
        self.gen_params = [p for ps in self.setup.generator_params.values() for p in ps]
        self.disc_params = [p for ps in self.setup.discriminator_params.values() for p in ps]
        self.gen_opt = build_optimizer(self.setup.generator_params, cfg)
        self.disc_opt = build_optimizer(self.setup.discriminator_params, cfg)
        if self.gen_opt is None:
            raise ValueError(f"method {cfg.method!r} left no generator parameter trainable")
        joint = cfg.joint_start is not None and cfg.joint_start < cfg.steps and not cfg.no_slm
        ood = read_ood_texts(cfg.ood_texts, cfg.ood_min_length) if cfg.ood_texts and joint else None
        self.dataset = TTSDataset(
            list(items),
            seed=cfg.seed,
            ood_phonemes=ood,
            ood_min_length=cfg.ood_min_length,
            vocab=model_vocab(model),
        )
        self.sampler = self._sampler()
        self.step = 0
        self.epoch = 0
        self.position = 0
        self.served = 0  # index within its epoch of the batch served last
        self.nan_streak = 0
        self.skipped = 0
        self.sigma_history: list[float] = []
        # per-step losses of the last log_every steps, saved with each checkpoint: the final losses of a
        # resumed run then cover the same steps as those of an uninterrupted one
        self.recent_losses: list[dict[str, float]] = []
        self.fingerprint = self._fingerprint()
        self.scaling = LossScaling(cfg.amp, self.device)
        self.writer = None
        self.slm_adv = None
        if cfg.joint_start is not None and cfg.joint_start < cfg.steps:
            if cfg.no_slm:
                log.info("SLM-adversarial joint stage (from step %d) is off: --no-slm", cfg.joint_start)
            elif slm is None:
                log.warning(
                    "SLM-adversarial joint stage (from step %d) is off: no WavLM model was given or found "
                    "locally (pass --wavlm)",
                    cfg.joint_start,
                )
            else:
                settings = SLMAdversarialSettings.from_config(
                    {**cfg.slmadv_params, "min_len": cfg.slm_min_len, "max_len": cfg.slm_max_len}
                )
                self.slm_adv = SLMAdversarial(model, slm, settings, seed=cfg.seed)
                if self.dist.active and self.dist.main:
                    log.info(
                        "SLM-adversarial stage under %d processes: each cuts its clips from its own share "
                        "of the batch (clip length and batch_percentage per share; docs/training.md)",
                        self.dist.world,
                    )

    def _sampler(self) -> FrameBudgetBatchSampler | RandomBatchSampler:
        """The official batches (random, last partial batch dropped), or length-grouped ones when asked."""
        cfg = self.cfg
        if cfg.batching == "random":
            return RandomBatchSampler(len(self.dataset), cfg.batch_size, seed=cfg.seed)
        return FrameBudgetBatchSampler(
            self.dataset.frame_lengths,
            max_frames=cfg.frame_budget or 10**9,
            seed=cfg.seed,
            max_batch_size=cfg.batch_size,
        )

    def _add_target_voice(self, items: Sequence[PreparedUtterance]) -> str:
        """A voice-pack model learns its target's voice: one new voice for the target speaker, started
        from ``cfg.voice_init`` (a stock voice, resolved from "nearest" before training starts)."""
        self.target_speakers = sorted({it.speaker for it in items})
        if len(self.target_speakers) != 1:
            raise ValueError(
                f"a voice-pack model learns one new voice per run; the data has {len(self.target_speakers)} "
                f"speakers ({', '.join(self.target_speakers[:5])}): adapt to one speaker at a time"
            )
        name = self.cfg.voice_name or self.target_speakers[0]
        stock = self.model.voices.packs()
        if self.cfg.voice_init not in stock:
            raise ValueError(
                f"--voice-init {self.cfg.voice_init!r} is not a voice of this model "
                f"({', '.join(sorted(stock))}); resolve 'nearest' before training"
            )
        self.model.voices.add_learned(name, stock[self.cfg.voice_init], self.cfg.voice_mode)
        log.info("learning the voice %r from %s (%s)", name, self.cfg.voice_init, self.cfg.voice_mode)
        return name

    # -- identity and resumption -----------------------------------------------------------------
    def _fingerprint(self) -> str:
        settings = {k: v for k, v in self.cfg.to_dict().items() if k not in EPHEMERAL}
        # settings added later, at the value runs begun before they existed had: those runs still resume
        # (length-grouped batches were the only kind then, so such a run resumes with --batching length)
        for key, old in (
            ("prior_missing", "error"),
            ("curvature_scaling", "ours"),
            ("batching", "length"),
            ("no_ood", False),
        ):
            if settings.get(key) == old:
                del settings[key]
        ids = [it.id for it in self.dataset.items]
        blob = json.dumps(
            {"settings": settings, "data": ids, "world": self.dist.world}, sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "nan_streak": self.nan_streak,
            "skipped": self.skipped,
            "sigma_data": self._sigma_data(),
            "sigma_history": self.sigma_history,
            "recent_losses": self.recent_losses[-self.cfg.log_every :],
            "fingerprint": self.fingerprint,
            "method": self.cfg.method,
            "loss_scaler": self.scaling.state_dict(),
        }

    def _optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"generator": self.gen_opt, "discriminator": self.disc_opt}

    def resume(self) -> bool:
        """Continue from the newest checkpoint in ``out/checkpoints`` if there is one."""
        latest = latest_checkpoint(self.checkpoint_dir)
        if latest is None:
            return False
        state = json.loads((latest / "state.json").read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"{self.out} holds a run with other settings or data (checkpoint {latest.name}); "
                "use a new --out folder, or delete its checkpoints to start over"
            )
        state = load_checkpoint(latest, self.model, self._optimizers())
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.nan_streak, self.skipped = state["nan_streak"], state["skipped"]
        self.sigma_history = list(state["sigma_history"])
        self.recent_losses = list(state.get("recent_losses") or [])
        if state["sigma_data"] is not None:
            self.model.diffusion.sigma_data = state["sigma_data"]
        self.scaling.load_state_dict(state.get("loss_scaler"))
        log.info("resumed from %s (step %d)", latest, self.step)
        return True

    def save(self) -> Path | None:
        if not self.dist.main:
            return None
        path = save_checkpoint(
            self.checkpoint_dir / f"step-{self.step:07d}", self.model, self._optimizers(), self._state()
        )
        prune_checkpoints(self.checkpoint_dir, self.cfg.keep_checkpoints)
        return path

    # -- data ----------------------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Global batches from the saved (epoch, position) on, forever (epochs reshuffle)."""
        while True:
            order = self.sampler.batches(self.epoch)
            self.dataset.set_epoch(self.epoch)
            while self.position < len(order):
                indices = order[self.position]
                self.served = self.position
                self.position += 1
                yield collate([self.dataset[i] for i in indices])
            self.epoch += 1
            self.position = 0

    # -- modes ---------------------------------------------------------------------------------------
    def set_modes(self) -> None:
        """The official train/eval split; with ``dropout=False`` every module runs deterministically."""
        set_training_modes(self.model, self.cfg.dropout)

    def _autocast(self):
        if self.cfg.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # -- one step ------------------------------------------------------------------------------------
    def train_step(self, batches: Sequence[Batch]) -> StepResult:
        cfg, obj, info = self.cfg, self.objective, self.dist
        self.set_modes()
        self.gen_opt.zero_grad(set_to_none=True)
        if self.disc_opt is not None:
            self.disc_opt.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        n_utt = 0
        prior_value: float | None = None
        bad_terms: list[str] = []
        used = 0
        last = len(batches) - 1
        for k, global_batch in enumerate(batches):
            global_size = len(global_batch)
            crop = decoder_crop_frames(global_batch.mel_lengths, cfg.max_len)
            batch = shard(global_batch, info).to(self.device)
            scale = 1.0 / (global_size * len(batches))

            def batch_mean(per_utt: torch.Tensor, n: int = global_size) -> torch.Tensor:
                return all_reduce_sum(per_utt.detach().sum().reshape(1), info)[0] / n

            with self._autocast():
                p = obj.generator_pass(
                    batch,
                    self.step,
                    crop_frames=crop,
                    diffusion=self.step >= cfg.diff_start,
                    batch_mean=batch_mean,
                )
            if p is None:
                continue
            used += 1
            if p.sigma_data is not None:
                self.sigma_history.append(p.sigma_data)
            d_per = None
            if self.adversarial:
                with self._autocast():
                    d_per = obj.discriminator_loss(p)
                self._backward(d_per.sum() * scale)
            if self.adversarial and k == last and self.disc_opt is not None:
                sum_gradients(self.disc_params, info)
                if not self._grads_finite(self.disc_params):
                    bad_terms.append("discriminator gradients")  # the step is skipped (one back-off)
                else:
                    # the scale is updated with the generator's step: this micro-batch's generator
                    # backward, still to come, is scaled like the earlier ones
                    self.scaling.step(self.disc_opt, update=False)
            for name in discriminators(self.model):  # no generator-loss gradients into the discriminators
                getattr(self.model, name).requires_grad_(False)
            try:
                with self._autocast():
                    obj.adversarial_terms(p)
                    per_utt = obj.total(p)
                loss = per_utt.sum() * scale
                if k == last and self.setup.prior is not None:
                    penalty = self.setup.prior.penalty()
                    prior_value = float(penalty.detach())
                    if not math.isfinite(prior_value):
                        bad_terms.append("prior")
                    loss = loss + penalty / info.world
                self._backward(loss)
            finally:
                for name in discriminators(self.model):
                    getattr(self.model, name).requires_grad_(True)
            if d_per is not None:
                p.terms["discriminator"] = d_per.detach()
            p.terms["total"] = per_utt.detach()
            for name, value in p.terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float().sum()
            n_utt += global_size
            bad_terms += [n for n, v in p.terms.items() if not bool(torch.isfinite(v).all())]
        if used == 0:
            return StepResult(self.step, skipped="every batch too short for a decoder crop")
        sum_gradients(self.gen_params, info)
        if not self._grads_finite(self.gen_params):
            bad_terms.append("generator gradients")
        if any_true(bool(bad_terms), info, self.device):
            self.gen_opt.zero_grad(set_to_none=True)
            self.scaling.skip()
            # with fp16 loss scaling, overflowing gradients of finite losses are the scaler's business
            # (it backs off); only non-finite values of the loss itself count towards nan_patience
            overflow = self.scaling.enabled and not any_true(
                any("gradients" not in t for t in bad_terms), info, self.device
            )
            self.nan_streak += 0 if overflow else 1
            self.skipped += 1
            ids = [i for b in batches for i in b.ids]
            what = ", ".join(sorted(set(bad_terms))) or "values on another process"
            msg = f"non-finite {what} in batch {ids}"
            if overflow:
                msg += f" (fp16 overflow; loss scale now {self.scaling.scaler.get_scale():g})"
            log.warning("step %d: skipping update: %s", self.step, msg)
            if self.nan_streak >= cfg.nan_patience:
                raise NonFiniteLossError(
                    f"{self.nan_streak} consecutive batches had NaN/Inf losses or gradients (last: {msg}). "
                    "Lower the learning rates, raise batch_size, or check the data report."
                )
            return StepResult(self.step, skipped=msg)
        self._opt_step(self.gen_opt)
        self.nan_streak = 0
        diffused = p is not None and "diff" in p.terms
        if self.slm_adv is not None and self.step >= cfg.joint_start and diffused:
            for name, value in self._slm_step(batch, p).items():
                sums[name] = torch.tensor(value * n_utt / info.world)
        keys = sorted(sums)
        totals = all_reduce_sum(torch.stack([sums[k].to(self.device) for k in keys]), info) / n_utt
        losses = {k: float(v) for k, v in zip(keys, totals)}
        if prior_value is not None:
            losses["prior"] = prior_value
        return StepResult(self.step, losses, utterances=n_utt)

    def epoch_step(self) -> int:
        """The current step's index within its epoch: the official loop's batch index ``i`` (the index
        of the step's last batch, counted in steps of ``grad_accum`` batches)."""
        return self.served // self.cfg.grad_accum

    def _slm_step(self, batch: Batch, p) -> dict[str, float]:
        """Joint stage: SLM-adversarial generator update (bert, bert_encoder, predictor, diffusion) and,
        every ``iter`` steps of an epoch, a WavLM-discriminator update; the official gradient control in
        between. As officially, the discriminator's turn is counted by the batch index within the epoch
        (``(i + 1) % iter == 0``), not by the global step: with fewer than ``iter`` batches per epoch it
        never updates."""
        model, info = self.model, self.dist
        self.gen_opt.zero_grad(set_to_none=True)
        model.wd.requires_grad_(False)
        try:
            out = self.slm_adv.step(batch, self.step, p.s_trg.detach(), p.ref)
            # every process takes the same branch (a lone early return would leave the others waiting
            # in the gradient all-reduce below): skip unless every shard had at least two usable clips
            if any_true(out is None, info, self.device):
                return {}
            self._backward(out.generator_loss / info.world)
        finally:
            model.wd.requires_grad_(True)
        sum_gradients(self.gen_params, info)
        self.scaling.unscale(self.gen_opt)  # the threshold below is on true gradient norms
        scale_predictor_gradients(model, self.slm_adv.settings)
        for group in self.gen_opt.param_groups:
            if group["name"] not in SLM_UPDATED:
                for param in group["params"]:
                    param.grad = None
        metrics = {"slm_gen": float(out.generator_loss.detach())}
        if any_true(not self._grads_finite(self.gen_params), info, self.device):
            self.scaling.skip()
        else:
            self._opt_step(self.gen_opt)
        if self.slm_adv.discriminator_due(self.epoch_step()) and self.disc_opt is not None:
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss, d_reg = self.slm_adv.discriminator_loss(out, self.step, p.real, p.reconstruct)
            self._backward(d_loss / info.world)
            wd_params = list(model.wd.parameters())
            sum_gradients(wd_params, info)
            if any_true(not self._grads_finite(wd_params), info, self.device):
                self.scaling.skip()
            else:
                self._opt_step(self.disc_opt)
            metrics["slm_disc"] = float(d_loss.detach())
            if d_reg is not None:
                metrics["slm_disc_reg"] = float(d_reg)
        return metrics

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaling.scale(loss).backward()

    def _opt_step(self, opt: torch.optim.Optimizer) -> None:
        self.scaling.step(opt)

    @staticmethod
    def _grads_finite(params: list[nn.Parameter]) -> bool:
        return all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None)

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, resume: bool = True) -> dict[str, Any]:
        cfg = self.cfg
        if not (resume and self.resume()):
            seed_everything(cfg.seed)  # dropout and other global draws start from the run's seed
        if self.dist.main:
            objective = self.objective
            idle = idle_components(
                self.model, self.adversarial, objective.alignments is not None, objective.slm is not None
            )
            table = describe_counts(self.setup.counts, idle)
            log.info("method %s: trained parameters\n%s", cfg.method, table)
            self._open_writer()
        source = self.batches()
        bar = None
        if self.progress and self.dist.main:
            from ..utils.progress import progress_bar as tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=f"adapt [{cfg.method}]", unit="step")
        t0, utt_since, last_log = time.perf_counter(), 0, time.perf_counter()
        history = self.recent_losses
        try:
            while self.step < cfg.steps:
                result = self.train_step([next(source) for _ in range(cfg.grad_accum)])
                self.step += 1
                utt_since += result.utterances
                if result.losses:
                    history.append(result.losses)
                    del history[: -cfg.log_every]
                if bar is not None:
                    bar.update(1)
                    if result.losses:
                        rate = utt_since / max(time.perf_counter() - last_log, 1e-9)
                        bar.set_postfix(loss=f"{result.losses['total']:.3f}", utt_s=f"{rate:.2f}")
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    rate = utt_since / max(time.perf_counter() - last_log, 1e-9)
                    self._log(history[-cfg.log_every :], rate)
                    utt_since, last_log = 0, time.perf_counter()
                if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save()
                if self.sample_item is not None and self.dist.main and self.step % cfg.sample_every == 0:
                    self.write_sample()
        finally:
            # closed before an error propagates, so the CLI's message starts a line of its own
            if bar is not None:
                bar.close()
        if self.writer is not None:
            self.writer.flush()
        final = {
            k: float(np.mean([h[k] for h in history[-cfg.log_every :] if k in h]))
            for k in (history[-1] if history else {})
        }
        return {
            "steps": self.step,
            "skipped_steps": self.skipped,
            "seconds": time.perf_counter() - t0,
            "final_losses": final,
            "sigma_data": self.final_sigma_data(),
        }

    def final_sigma_data(self) -> float | None:
        """The official choice: the mean of every batch estimate seen (else the config value; None for a
        model without a sampler)."""
        if self.sigma_history:
            return float(np.mean(self.sigma_history))
        return self._sigma_data()

    def _has(self, name: str) -> bool:
        has = getattr(self.model, "has_module", None)
        return has(name) if has is not None else hasattr(self.model, name)

    def _sigma_data(self) -> float | None:
        return float(self.model.diffusion.sigma_data) if self._has("diffusion") else None

    # -- reporting -----------------------------------------------------------------------------------
    def _open_writer(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            log.info("tensorboard is not installed; scalars go to the log only")
            return
        self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step + 1)

    def _log(self, recent: list[dict[str, float]], rate: float) -> None:
        if not self.dist.main or not recent:
            return
        means = {k: float(np.mean([r[k] for r in recent if k in r])) for k in recent[-1]}
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(means.items()))
        sigma = self._sigma_data()
        log.info(
            "step %d/%d %s utt/s=%.2f%s",
            self.step,
            self.cfg.steps,
            shown,
            rate,
            f" sigma_data={sigma:.4f}" if sigma is not None else "",
        )
        if self.writer is not None:
            for k, v in means.items():
                if math.isfinite(v):
                    self.writer.add_scalar(f"loss/{k}", v, self.step)
            self.writer.add_scalar("train/utterances_per_second", rate, self.step)
            if sigma is not None:
                self.writer.add_scalar("train/sigma_data", sigma, self.step)
            for group in self.gen_opt.param_groups:
                self.writer.add_scalar(f"lr/{group['name']}", group["lr"], self.step)

    @torch.no_grad()
    def write_sample(self) -> Path | None:
        """Synthesise the sample utterance's sentence in its own voice (seeded, deterministic source)."""
        item = self.sample_item
        if item is None:
            return None
        import soundfile as sf

        from ..utils.io import atomic_path

        voice_packs = getattr(self.model, "uses_voice_packs", False)
        try:
            wave, sr = self.model.synthesize(
                "",
                reference=self.voice_name if voice_packs else str(item.utterance.audio_path),
                phonemes=item.phonemes,
                seed=self.cfg.seed,
                deterministic=True,
            )
        except Exception as e:  # a sample must never stop training
            log.warning("could not write the audio sample at step %d: %s", self.step, e)
            return None
        path = self.out / "samples" / f"step-{self.step:07d}.wav"
        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(str(tmp), wave, sr, format="WAV")
        if self.writer is not None:
            self.writer.add_audio("sample", torch.from_numpy(wave), self.step, sample_rate=sr)
        return path
