"""Train a small CTC phoneme recogniser (the StyleTTS 2 aligner architecture) for PER.

The recogniser must be independent of the model under test: train it on real recordings of an
evaluation corpus (or the ground truth of the test speakers), never on the synthesiser's output.
Targets are the reference phone units (``per.phone_units``: no spaces, punctuation or stress marks) as
StyleTTS 2 token ids; blank is id 0 (the pad symbol), as in the official aligner's CTC head.

Training pads a batch with the log-mel of silence, not zeros, so padding looks like the pauses the
model sees anyway. Checkpoints (``last.safetensors`` + ``optimizer.pt``) are written every epoch; an
interrupted run resumes from them. The final recogniser is ``recognizer.safetensors``.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..alignment.recognizer import KIND, build_aligner, ctc_greedy_decode
from ..audio import LOG_EPS, LOG_MEL_MEAN, LOG_MEL_STD, log_mel
from ..text.symbols import SYMBOL_TO_ID, SYMBOLS
from .audio_io import load_wave
from .per import PhonemeRecognizer, phone_units
from .text_norm import edit_distance

log = logging.getLogger(__name__)
SILENCE = (math.log(LOG_EPS) - LOG_MEL_MEAN) / LOG_MEL_STD


@dataclass
class PERTrainConfig:
    hidden_dim: int = 128
    n_layers: int = 3
    token_embedding_dim: int = 64
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    spec_augment: bool = True


def _encode_targets(ipa: str) -> list[int]:
    units = phone_units(ipa)
    missing = sorted({u for u in units if u not in SYMBOL_TO_ID})
    if missing:
        raise ValueError(f"phonemes {ipa!r} contain symbols outside the StyleTTS 2 table: {missing}")
    return [SYMBOL_TO_ID[u] for u in units]


def _batch(mels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[-1] for m in mels])
    out = torch.full((len(mels), mels[0].shape[0], int(lengths.max())), SILENCE)
    for i, m in enumerate(mels):
        out[i, :, : m.shape[-1]] = m
    return out, lengths


def _augment(mel: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light SpecAugment (one frequency and one time mask) so a small corpus is not memorised."""
    mel = mel.clone()
    n_mels, t = mel.shape
    f = int(torch.randint(0, 9, (1,), generator=gen))
    f0 = int(torch.randint(0, n_mels - f + 1, (1,), generator=gen))
    mel[f0 : f0 + f] = SILENCE
    w = int(torch.randint(0, max(1, min(12, t // 8)), (1,), generator=gen))
    t0 = int(torch.randint(0, max(1, t - w), (1,), generator=gen))
    mel[:, t0 : t0 + w] = SILENCE
    return mel


def evaluate_per(model: torch.nn.Module, mels: Sequence[torch.Tensor], targets: Sequence[list[int]]) -> float:
    """Corpus-level PER (total edits / total reference units), one utterance at a time."""
    model.eval()
    edits = total = 0
    with torch.inference_mode():
        for m, tgt in zip(mels, targets):
            hyp = ctc_greedy_decode(model(m.unsqueeze(0))[0])
            edits += edit_distance(tgt, hyp)
            total += len(tgt)
    return edits / max(total, 1)


def train_per_recognizer(
    items: Sequence[tuple[str | os.PathLike, str]],
    out_dir: str | os.PathLike,
    config: PERTrainConfig | None = None,
    progress: bool = True,
) -> tuple[PhonemeRecognizer, dict]:
    """Train on ``(audio_path, reference_ipa)`` pairs; returns the recogniser and a summary dict."""
    from ..utils.io import load_tensors, safe_torch_load, save_tensors, write_json
    from ..utils.progress import progress_bar as tqdm
    from ..utils.seed import seed_everything

    cfg = config or PERTrainConfig()
    if len(items) < 4:
        raise ValueError(f"train-per needs at least 4 utterances, got {len(items)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)

    mels, targets = [], []
    for path, ipa in tqdm(items, desc="features", disable=not progress):
        tgt = _encode_targets(ipa)
        if not tgt:
            raise ValueError(f"{path}: reference phonemes are empty")
        mel = log_mel(torch.from_numpy(load_wave(path, 24000)))[0]
        if math.ceil(mel.shape[-1] / 2) < len(tgt):
            raise ValueError(f"{path}: audio is too short for its {len(tgt)} phones")
        mels.append(mel)
        targets.append(tgt)
    order = list(range(len(items)))
    random.Random(cfg.seed).shuffle(order)
    n_val = max(1, int(round(cfg.val_fraction * len(order)))) if cfg.val_fraction > 0 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]

    model_cfg = {
        "input_dim": 80,
        "hidden_dim": cfg.hidden_dim,
        "n_token": len(SYMBOLS),
        "n_layers": cfg.n_layers,
        "token_embedding_dim": cfg.token_embedding_dim,
    }
    model = build_aligner(model_cfg)
    params = [p for n, p in model.named_parameters() if not n.startswith("asr_s2s.")]
    for n, p in model.named_parameters():
        if n.startswith("asr_s2s."):
            p.requires_grad_(False)  # the attention decoder plays no part in CTC recognition
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    start_epoch, history = 0, []
    last = out / "last.safetensors"
    if last.exists() and (out / "optimizer.pt").exists():
        tensors, meta = load_tensors(last)
        if meta.get("train_config") == asdict(cfg) and meta.get("n_items") == len(items):
            model.load_state_dict(tensors)
            state = safe_torch_load(out / "optimizer.pt")
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            start_epoch, history = int(meta["epoch"]), list(meta.get("history", []))
            log.info("resuming PER training from epoch %d", start_epoch)
        else:
            log.warning("ignoring %s: it was written with other settings or data", last)

    gen = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(range(start_epoch, cfg.epochs), desc="train-per", disable=not progress)
    for epoch in bar:
        model.train()
        rng = random.Random(cfg.seed * 1000 + epoch)
        # length-sorted buckets keep padding small; the bucket order is shuffled
        sorted_idx = sorted(train_idx, key=lambda i: mels[i].shape[-1])
        batches = [sorted_idx[i : i + cfg.batch_size] for i in range(0, len(sorted_idx), cfg.batch_size)]
        rng.shuffle(batches)
        total = 0.0
        for b in batches:
            batch_mels = [_augment(mels[i], gen) if cfg.spec_augment else mels[i] for i in b]
            x, lengths = _batch(batch_mels)
            logp = model(x).log_softmax(-1).transpose(0, 1)  # [T', B, V]
            in_len = (lengths + 1) // 2
            tgt = torch.cat([torch.tensor(targets[i]) for i in b])
            tgt_len = torch.tensor([len(targets[i]) for i in b])
            loss = ctc(logp, tgt, in_len, tgt_len)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        train_loss = total / len(train_idx)
        val_per = (
            evaluate_per(model, [mels[i] for i in val_idx], [targets[i] for i in val_idx])
            if val_idx
            else None
        )
        history.append(
            {
                "epoch": epoch + 1,
                "train_ctc": round(train_loss, 4),
                "val_per": None if val_per is None else round(val_per, 4),
            }
        )
        bar.set_postfix(ctc=f"{train_loss:.3f}", val_per="-" if val_per is None else f"{val_per:.3f}")
        meta = {
            "kind": KIND,
            "config": model_cfg,
            "train_config": asdict(cfg),
            "epoch": epoch + 1,
            "n_items": len(items),
            "history": history,
        }
        save_tensors(last, model.state_dict(), meta)
        opt_path = out / "optimizer.pt"
        tmp = opt_path.with_suffix(".pt.tmp")
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp)
        os.replace(tmp, opt_path)

    summary = {
        "kind": KIND,
        "config": model_cfg,
        "train_config": asdict(cfg),
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "val_ids": [str(items[i][0]) for i in val_idx],
        "history": history,
        "val_per": history[-1]["val_per"] if history else None,
    }
    save_tensors(out / "recognizer.safetensors", model.state_dict(), summary)
    write_json(out / "train_summary.json", summary)
    rec = PhonemeRecognizer(model.eval(), str(out / "recognizer.safetensors"))
    return rec, summary
