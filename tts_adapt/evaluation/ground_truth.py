"""Ground truth for the evaluators: how named sets of clips score, with nothing synthesised here.

Every later number (an adapted voice's WER, similarity or MOS) is read against a ceiling and a floor:
the same evaluators on recordings of the same texts by other engines and by the base model. Each set
is a corpus (a folder of ``*.wav`` + same-name ``*.txt``, a file list, any layout ``load_corpus``
reads; one set may be several of them). Per clip:

* ``wer``/``cer`` and the transcript (``asr_text``), error counts so WER is a corpus rate;
* ``sim``: cosine similarity to the normalised mean embedding of the *other* clips of the same speaker
  in the same set (leave one out), and ``sim_other``: mean similarity to the set's other speakers'
  profiles (a set of distinct voices has ``sim`` well above ``sim_other``);
* ``dnsmos`` (overall, with ``dnsmos_sig``/``dnsmos_bak``) and ``distillmos``.

Per set: the protocol's two-level bootstrap (speakers, then their clips) for each metric. Rows are
kept in ``clips.jsonl`` and reused when a clip's audio and the scoring settings are unchanged, so adding
a set scores only the new clips.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..data.utterance import Utterance
from .protocol import (
    EvalConfig,
    Scorers,
    _file_sha1,
    _read_rows,
    _write_rows,
    error_counts,
    metric_estimate,
)

log = logging.getLogger(__name__)

GROUND_TRUTH_METRICS = ("wer", "sim", "dnsmos", "distillmos")
TABLE_COLUMNS = (
    ("WER ↓", "wer"),
    ("similarity ↑", "sim"),
    ("other voices ↓", "sim_other"),
    ("DNSMOS ↑", "dnsmos"),
    ("Distill-MOS ↑", "distillmos"),
)
FIELDS = ("wer", "cer", "sim", "sim_other", "dnsmos", "dnsmos_sig", "dnsmos_bak", "distillmos")


def load_sets(specs: Sequence[tuple[str, str]]) -> dict[str, list[Utterance]]:
    """``[(name, corpus spec)]`` to clips per set name, in first-seen order; a repeated name adds a corpus."""
    from ..data import load_corpus

    sets: dict[str, list[Utterance]] = {}
    for name, spec in specs:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"set name {name!r} must be non-empty, without '/' and not start with '.'")
        utts = load_corpus(spec)
        empty = [u.id for u in utts if not u.text.strip()]
        if empty:
            raise ValueError(f"set {name} ({spec}): {len(empty)} clip(s) have no text, e.g. {empty[0]}")
        sets.setdefault(name, []).extend(utts)
    for name, utts in sets.items():
        keys = [(u.speaker, u.id) for u in utts]
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"set {name}: two clips share a speaker and id; give each corpus its own speaker"
            )
    return sets


def _similarities(rows: list[dict], embs: np.ndarray) -> None:
    """Leave-one-out own-speaker similarity and mean similarity to the other speakers of the set."""
    from .similarity import centroid

    by_speaker: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_speaker.setdefault(r["speaker"], []).append(i)
    whole = {spk: centroid(embs[idx]) for spk, idx in by_speaker.items()}
    for spk, idx in by_speaker.items():
        others = [v for s, v in whole.items() if s != spk]
        for i in idx:
            rest = [j for j in idx if j != i]
            rows[i]["sim"] = float(embs[i] @ centroid(embs[rest])) if rest else None
            rows[i]["sim_other"] = float(np.mean([embs[i] @ o for o in others])) if others else None


def score_set(name: str, utts: Sequence[Utterance], scorers: Scorers, progress: bool = True) -> list[dict]:
    """One row per clip of one set (metrics not asked for are absent)."""
    from ..utils.progress import progress_bar as tqdm

    cfg = scorers.cfg
    rows = [
        {
            "set": name,
            "id": u.id,
            "speaker": u.speaker,
            "text": u.text,
            "audio": str(Path(u.audio_path).resolve()),
        }
        for u in utts
    ]
    if "sim" in cfg.metrics:
        _similarities(rows, scorers.speaker.embed([r["audio"] for r in rows]))
    for r in tqdm(rows, desc=f"scoring {name}", disable=not progress, unit="clip"):
        if "wer" in cfg.metrics:
            s = scorers.asr.score(r["audio"], r["text"])
            r.update(wer=s["wer"], cer=s["cer"], asr_text=s["hypothesis"])
            r.update(error_counts(r["text"], s["hypothesis"]))
        if "dnsmos" in cfg.metrics:
            d = scorers.dnsmos.score([r["audio"]])[0]
            r.update(dnsmos=d["ovrl"], dnsmos_sig=d["sig"], dnsmos_bak=d["bak"])
        if "distillmos" in cfg.metrics:
            r["distillmos"] = scorers.distillmos.score([r["audio"]])[0]
    return rows


def run_ground_truth(
    sets: dict[str, list[Utterance]],
    out_dir: str | os.PathLike,
    cfg: EvalConfig,
    progress: bool = True,
) -> dict:
    """Score every set, write ``clips.jsonl``, ``ground_truth.json`` and ``ground_truth.md``; returns the
    summary. Similarity depends on the whole set, so a set with any changed clip is scored again."""
    from ..utils.io import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "clips.jsonl"
    key = cfg.scoring_key()
    old: dict[str, list[dict]] = {}
    for r in _read_rows(rows_path):
        if r.get("scoring_key") == key:
            old.setdefault(r.get("set"), []).append(r)
    scorers = Scorers(cfg, out / "cache")
    kept = [r for r in _read_rows(rows_path) if r.get("set") not in sets]
    done: list[dict] = []
    for name, utts in sets.items():
        shas = [_file_sha1(u.audio_path) for u in utts]
        before = {(r["speaker"], r["id"]): r for r in old.get(name, [])}
        same = len(before) == len(utts) and all(
            before.get((u.speaker, u.id), {}).get("audio_sha1") == sha for u, sha in zip(utts, shas)
        )
        if same:
            rows = [before[(u.speaker, u.id)] for u in utts]
            log.info("set %s: %d clips unchanged, scores reused", name, len(rows))
        else:
            rows = score_set(name, utts, scorers, progress)
            for r, sha in zip(rows, shas):
                r.update(audio_sha1=sha, scoring_key=key)
        done += rows
        _write_rows(rows_path, kept + done)  # a finished set survives an interruption in the next
    summary = summarise(done, list(sets), cfg)
    write_json(out / "ground_truth.json", summary)
    write_text(out / "ground_truth.md", render_markdown(summary, done))
    return summary


def summarise(rows: Sequence[dict], names: Sequence[str], cfg: EvalConfig) -> dict:
    from .asr import FASTER_WHISPER_DECODE

    sets: dict[str, Any] = {}
    for name in names:
        sub = [r for r in rows if r["set"] == name]
        metrics = {}
        for m in FIELDS:
            est = metric_estimate(sub, m, cfg)
            if est is not None:
                metrics[m] = est
        sets[name] = {
            "clips": len(sub),
            "speakers": sorted({r["speaker"] for r in sub}),
            "metrics": metrics,
        }
    settings: dict[str, Any] = {"asr_backend": cfg.asr_backend, "speaker_backend": cfg.speaker_backend}
    if cfg.asr_backend and (cfg.asr_backend.startswith("whisper-") or cfg.asr_backend == "faster-whisper"):
        settings["decoding"] = {**FASTER_WHISPER_DECODE, "compute_type": "int8 on CPU, float16 on GPU"}
    return {
        "config": asdict(cfg),
        "settings": settings,
        "sets": sets,
        "interval": "two-level bootstrap 95% (speakers, then their clips; percentile)",
    }


def _cell(est: dict | None) -> str:
    if not est or est.get("mean") is None or not np.isfinite(est["mean"]):
        return "–"
    return f"{est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def table_markdown(summary: dict) -> str:
    """The one table: a row per set, a column per metric measured, mean [95 % interval]."""
    cols = [(t, m) for t, m in TABLE_COLUMNS if any(m in s["metrics"] for s in summary["sets"].values())]
    lines = [
        "| set | clips | voices | " + " | ".join(t for t, _ in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for name, s in summary["sets"].items():
        cells = [name, str(s["clips"]), str(len(s["speakers"]))] + [
            _cell(s["metrics"].get(m)) for _, m in cols
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(summary: dict, rows: Sequence[dict]) -> str:
    from .quality import MOS_PREDICTS

    st = summary["settings"]
    lines = ["# Ground truth of the evaluators", "", table_markdown(summary), ""]
    lines.append(f"Means with {summary['interval']}.")
    if st.get("asr_backend"):
        dec = st.get("decoding")
        how = (
            f" (faster-whisper, language {dec['language']}, beam {dec['beam_size']}, temperature "
            f"{dec['temperature']}, {dec['compute_type']})"
            if dec
            else ""
        )
        lines.append(f"WER: {st['asr_backend']}{how}; corpus rate after English text normalisation.")
    if any("sim" in r for r in rows):
        lines.append(
            f"Similarity: {st['speaker_backend']} embeddings; a clip against the mean of its voice's other "
            "clips in the set, and (other voices) against the set's other voices."
        )
    lines += [MOS_PREDICTS[m] + "." for m in ("dnsmos", "distillmos") if any(m in r for r in rows)]
    transcribed = [r for r in rows if r.get("asr_text") is not None]
    if transcribed:
        lines += [
            "",
            "## Transcripts",
            "",
            "| set | voice | id | reference | hypothesis | WER |",
            "|---|---|---|---|---|---|",
        ]
        for r in transcribed:
            cells = [r["set"], r["speaker"], r["id"], r["text"], r["asr_text"], f"{r['wer']:.2f}"]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
