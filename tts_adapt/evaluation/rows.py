"""The evaluation's row files and the estimates made from rows: shared by the protocol and the
stock-voice measures (which the protocol runs), so that neither imports the other."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .stats import bootstrap_mean, bootstrap_ratio
from .text_norm import edit_distance, normalize_text

log = logging.getLogger(__name__)


def file_sha1(path: str | os.PathLike) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("ignoring a damaged line in %s", path)
    return rows


def write_rows(path: Path, rows: Sequence[dict]) -> None:
    from ..utils.io import write_text

    write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=json_number) + "\n" for r in rows))


def json_number(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def stored_audio_path(path: str, out_dir: Path) -> str:
    """How a row names its audio: relative to the evaluation folder when inside it (the folder can be
    moved, and ``report`` resolves it against the folder), else absolute (never relative to the working
    directory the evaluation happened to run in)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(out_dir).resolve()).as_posix()
    except ValueError:
        return str(p)


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Word and character edits and reference lengths, so that WER/CER can be pooled over a corpus."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    return {
        "wer_errors": edit_distance(ref.split(), hyp.split()),
        "wer_words": len(ref.split()),
        "cer_errors": edit_distance(list(ref), list(hyp)),
        "cer_chars": len(ref),
    }


CORPUS_RATES = {"wer": ("wer_errors", "wer_words"), "cer": ("cer_errors", "cer_chars")}


def _pooled(rows: Sequence[dict], metric: str) -> list[dict] | None:
    """Rows with the counts of a pooled rate (``None``: not a pooled metric, or counts absent)."""
    if metric not in CORPUS_RATES:
        return None
    err, n = CORPUS_RATES[metric]
    with_counts = [r for r in rows if r.get(err) is not None and r.get(n) is not None]
    return (
        with_counts
        if with_counts and len(with_counts) == sum(r.get(metric) is not None for r in rows)
        else None
    )


def metric_estimate(rows: Sequence[dict], metric: str, cfg: Any) -> dict | None:
    """Point value and two-level (speakers, then utterances) bootstrap interval of one metric.

    WER and CER are corpus rates, total errors over total reference words (characters); every other
    metric is the mean over utterances. ``cfg``: anything with ``n_boot`` and ``seed`` (an ``EvalConfig``).
    """
    pooled = _pooled(rows, metric)
    if pooled is not None:
        err, n = CORPUS_RATES[metric]
        est = bootstrap_ratio(
            [r[err] for r in pooled],
            [r[n] for r in pooled],
            cfg.n_boot,
            cfg.seed,
            groups=[r["speaker"] for r in pooled],
        )
        return est.to_dict()
    sub = [r for r in rows if r.get(metric) is not None]
    if not sub:
        return None
    vals = [r[metric] for r in sub]
    return bootstrap_mean(vals, cfg.n_boot, cfg.seed, groups=[r["speaker"] for r in sub]).to_dict()


def point_value(rows: Sequence[dict], metric: str) -> float:
    """The metric over ``rows`` without an interval (corpus rate for WER/CER, else the mean)."""
    pooled = _pooled(rows, metric)
    if pooled is not None:
        err, n = CORPUS_RATES[metric]
        words = sum(r[n] for r in pooled)
        return float(sum(r[err] for r in pooled) / words) if words else float("nan")
    return float(np.mean([r[metric] for r in rows if r.get(metric) is not None]))
