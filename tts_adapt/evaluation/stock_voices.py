"""Stock-voice measures: what adapting a voice-pack model (Kokoro-82M) did to the voices it shipped with.

Every chosen stock voice speaks the same sentences, with the same seed per clip, through the base model
and through each adapted model. Per clip (``stock_voices.jsonl``):

* ``retention``: cosine similarity of the speaker embeddings of the adapted clip and the base clip of the
  same voice, text and seed. Synthesis is a function of (weights, voice pack, text, seed), so a model
  whose weights did not move makes the same audio and scores exactly 1.0 (:func:`exact_cosine` makes
  equal embeddings give 1.0, not 0.99999994);
* ``wer``/``cer`` and the transcript, for base and adapted clips alike (the WER rise is adapted − base on
  the same clips);
* ``nearest_clip``: the voice whose *base* clip of the same sentence is nearest the adapted clip.

Per voice: retention (bootstrap over its sentences), WER, and the confusion check: the voice's adapted
centroid (over its sentences) against every chosen voice's base centroid; the voice is *kept* when its
own is the nearest (:func:`nearest_own`). Per system: retention, WER and WER rise with two-level
bootstrap intervals (voices, then their sentences), how many voices are kept and which are not.

Audio goes to ``audio/<system>/stock/<voice>/NN.wav``; synthesis resumes from what is there and WER rows
are reused while a clip's audio and the scoring settings are unchanged. Kokoro's waveform depends on
the number of torch threads (its harmonic source integrates F0, so rounding differences in the
predictor become a small phase drift): each clip records the thread count it was made with, and a
comparison of clips made with different counts is flagged, since it is no longer bit for bit.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .stats import bootstrap_mean, bootstrap_ratio

log = logging.getLogger(__name__)

STOCK_SET = "stock"
ROWS_FILE = "stock_voices.jsonl"
DEFAULT_SENTENCES = 4


@dataclass(frozen=True)
class StockCase:
    """One stock voice speaking one sentence; the seed is shared by every system."""

    voice: str
    index: int
    text: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.voice}/{self.index:02d}"


@dataclass
class StockVoices:
    """Which stock voices (``"all"`` or names) speak which sentences, seeded by ``seed``."""

    voices: str | Sequence[str] = "all"
    texts: Sequence[str] = field(default_factory=tuple)
    seed: int = 0

    def __post_init__(self) -> None:
        self.texts = tuple(t.strip() for t in self.texts)
        if not self.texts or not all(self.texts):
            raise ValueError("the stock-voice measures need at least one non-empty sentence (--stock-texts)")
        if not isinstance(self.voices, str):
            self.voices = tuple(self.voices)
            if not self.voices:
                raise ValueError("--stock-voices: name at least one voice, or 'all'")

    def resolve(self, available: Sequence[str]) -> list[str]:
        """The chosen voices, checked against the base model's (``all``: every one, in its order)."""
        if self.voices == "all":
            return list(available)
        names = [v.strip() for v in (self.voices.split(",") if isinstance(self.voices, str) else self.voices)]
        names = [v for v in names if v]
        unknown = [v for v in names if v not in available]
        if unknown:
            raise ValueError(
                f"--stock-voices: the base model has no voice {', '.join(unknown)} "
                f"(its voices: {', '.join(available)})"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"--stock-voices names a voice twice: {','.join(names)}")
        return names

    def cases(self, voices: Sequence[str]) -> list[StockCase]:
        from .testset import case_seed

        return [
            StockCase(v, i, t, case_seed(self.seed, f"{STOCK_SET}/{v}/{i}"))
            for v in voices
            for i, t in enumerate(self.texts)
        ]


def default_sentences(n: int = DEFAULT_SENTENCES, path: str | Path | None = None) -> list[str]:
    """The first ``n`` sentences of ``path`` (default: the 16 ground-truth sentences)."""
    from .voice_sets import SENTENCES, read_sentences

    texts = read_sentences(path or SENTENCES)
    if n < 1:
        raise ValueError(f"--stock-sentences must be at least 1, got {n}")
    if n > len(texts):
        raise ValueError(f"--stock-sentences {n}: {path or SENTENCES} has only {len(texts)} sentences")
    return texts[:n]


# ---- the measures themselves (pure functions: tested on hand-made embeddings) ---------------------


def exact_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors that is exactly 1.0 for equal nonzero vectors.

    Dot products are correctly rounded sums (``math.fsum``), so they depend on the values alone (not on
    memory alignment or summation order), and ``x / sqrt(x * x) == 1`` holds exactly in IEEE binary
    arithmetic; the result is clipped to [-1, 1].
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"cosine of vectors of different sizes: {a.size} and {b.size}")
    ab, aa, bb = math.fsum(a * b), math.fsum(a * a), math.fsum(b * b)
    den = math.sqrt(aa * bb)
    if den == 0.0:
        return float("nan")
    return float(min(1.0, max(-1.0, ab / den)))


def unit_mean(vectors: np.ndarray) -> np.ndarray:
    """The unit-norm mean of ``[n, d]`` vectors (a voice's profile over its clips)."""
    m = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    norm = float(np.linalg.norm(m))
    return m / norm if norm > 0 else m


def nearest_own(adapted: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """For each voice of ``adapted``: which voice of ``base`` its profile is nearest (cosine), its
    similarity to its own base profile, the best other voice's, and the margin between them.

    ``kept`` is True when the nearest base profile is the voice's own (a tie counts as kept only if no
    other voice is strictly nearer). With a single voice there is nothing to confuse it with: ``kept`` is
    None.
    """
    missing = sorted(set(adapted) - set(base))
    if missing:
        raise ValueError(f"voices without a base profile: {', '.join(missing)}")
    out: dict[str, dict[str, Any]] = {}
    for voice, vec in adapted.items():
        sims = {u: exact_cosine(vec, b) for u, b in base.items()}
        own = sims[voice]
        others = {u: s for u, s in sims.items() if u != voice}
        if not others:
            out[voice] = {"nearest": voice, "own": own, "best_other": None, "margin": None, "kept": None}
            continue
        rival = max(others, key=lambda u: (others[u], u))
        nearest = voice if own >= others[rival] else rival
        out[voice] = {
            "nearest": nearest,
            "own": own,
            "best_other": rival,
            "margin": own - others[rival],
            "kept": nearest == voice,
        }
    return out


# ---- synthesis, scoring and the rows file ---------------------------------------------------------


def _pack_digest(system: Any, voices: Sequence[str]) -> dict[str, str | None]:
    """sha1 of each voice's pack in a system (None where the system does not expose its packs)."""
    model = getattr(system, "model", None)
    bank = getattr(model, "voices", None)
    if bank is None or not hasattr(bank, "packs"):
        return dict.fromkeys(voices)
    packs = bank.packs()
    out: dict[str, str | None] = {}
    for v in voices:
        if v not in packs:
            out[v] = None
            continue
        styles = packs[v].styles.detach().cpu().float().contiguous().numpy()
        out[v] = hashlib.sha1(styles.tobytes()).hexdigest()[:16]
    return out


def check_systems(entries: Sequence[Any], voices_spec: StockVoices) -> tuple[Any, list[str]]:
    """The base entry and the chosen voices; every system must be a voice-pack model holding them."""
    bases = [e for e in entries if e.role == "base"]
    if not bases:
        raise ValueError(
            "the stock-voice measures compare each system with the base model: give --base "
            "(e.g. --base kokoro)"
        )
    base = bases[0]
    names = getattr(base.system, "voice_names", lambda: [])()
    if not names:
        raise ValueError(
            f"--stock-voices: the base system {base.name} is not a voice-pack model (Kokoro): it has no "
            "stock voices to speak"
        )
    voices = voices_spec.resolve(names)
    for e in entries:
        if e.role == "ground_truth" or e is base:
            continue
        own = set(getattr(e.system, "voice_names", lambda: [])())
        lacking = [v for v in voices if v not in own]
        if lacking:
            raise ValueError(
                f"--stock-voices: system {e.name} cannot speak {', '.join(lacking[:4])}"
                + (" (it is not a voice-pack model)" if not own else "")
            )
    return base, voices


def synthesize_stock(
    entry: Any, cases: Sequence[StockCase], out: Path, progress: bool = True
) -> list[tuple[Path, bool]]:
    """Each case's clip through one system, and whether it was made now (resumable: clips already
    written are kept)."""
    from ..utils.progress import progress_bar as tqdm
    from .audio_io import write_wave
    from .rows import safe_name as _safe

    paths = []
    for c in tqdm(cases, desc=f"stock voices: {entry.name}", disable=not progress, unit="clip"):
        p = out / "audio" / entry.name / STOCK_SET / _safe(c.voice) / f"{c.index:02d}.wav"
        made = not p.exists()
        if made:
            wave, sr = entry.system.synthesize(c.text, c.voice, c.seed)
            wave = np.asarray(wave, dtype=np.float32).reshape(-1)
            if wave.size == 0 or not np.all(np.isfinite(wave)):
                raise RuntimeError(f"system {entry.name} produced empty or non-finite audio for {c.id}")
            write_wave(p, wave, sr)
        paths.append((p, made))
    return paths


def _case_matches(row: dict, case: StockCase) -> bool:
    return row.get("text") == case.text and row.get("seed") == case.seed


def _stock_rows_for(
    entry: Any,
    cases: Sequence[StockCase],
    clips: Sequence[tuple[Path, bool]],
    old: dict[tuple[str, str], dict],
    packs: dict[str, str | None],
    scorers: Any,
    key: str,
    out: Path,
    progress: bool,
) -> list[dict]:
    """Rows for one current system: reused where the audio and scoring key are unchanged, else scored."""
    import torch

    from ..utils.progress import progress_bar as tqdm
    from .rows import error_counts, stored_audio_path
    from .rows import file_sha1 as _file_sha1

    rows = []
    todo = []
    for c, (p, made) in zip(cases, clips, strict=True):
        sha = _file_sha1(p)
        prev = old.get((entry.name, c.id))
        same_audio = prev is not None and prev.get("audio_sha1") == sha and _case_matches(prev, c)
        if made:
            threads = torch.get_num_threads()
        else:
            threads = prev.get("threads") if same_audio else None
        row = {
            "system": entry.name,
            "role": entry.role,
            "set": STOCK_SET,
            "id": c.id,
            "voice": c.voice,
            "speaker": c.voice,
            "index": c.index,
            "text": c.text,
            "seed": c.seed,
            "audio": stored_audio_path(str(p), out),
            "audio_sha1": sha,
            "threads": threads,
            "pack_sha1": packs.get(c.voice),
            "scoring_key": key,
        }
        if same_audio and prev.get("scoring_key") == key:
            row.update({k: prev[k] for k in _SCORED if k in prev})
        else:
            todo.append(len(rows))
        rows.append(row)
    if "wer" in scorers.cfg.metrics:
        for i in tqdm(todo, desc=f"scoring stock voices: {entry.name}", disable=not progress, unit="clip"):
            r = rows[i]
            s = scorers.asr.score(str(clips[i][0]), r["text"])
            r.update(wer=s["wer"], cer=s["cer"], asr_text=s["hypothesis"])
            r.update(error_counts(r["text"], s["hypothesis"]))
    return rows


_SCORED = ("wer", "cer", "asr_text", "wer_errors", "wer_words", "cer_errors", "cer_chars")


def _earlier_rows(
    old_rows: Sequence[dict], names: Sequence[str], cases: Sequence[StockCase], key: str
) -> dict[str, list[dict]]:
    """Rows of systems scored by earlier calls that cover exactly these cases with these settings."""
    out = {}
    for name in names:
        mine = {r["id"]: r for r in old_rows if r.get("system") == name and r.get("scoring_key") == key}
        rows = [mine.get(c.id) for c in cases]
        if all(r is not None and _case_matches(r, c) for r, c in zip(rows, cases, strict=True)):
            out[name] = rows
    return out


def earlier_complete(
    out: Path, names: Sequence[str], cfg: Any, spec: StockVoices, voices: Sequence[str]
) -> set[str]:
    """Which of ``names`` (earlier systems) have stock rows for every case of this stock set."""
    from .rows import read_rows as _read_rows

    cases = spec.cases(voices)
    return set(_earlier_rows(_read_rows(out / ROWS_FILE), names, cases, cfg.scoring_key()))


def run_stock_voices(
    entries: Sequence[Any],
    spec: StockVoices,
    out: Path,
    scorers: Any,
    progress: bool = True,
    earlier: Sequence[Any] = (),
) -> dict[str, Any]:
    """Synthesise, score and aggregate the stock-voice measures (see module docstring).

    ``entries``: the systems of this call (ground truth is skipped); ``earlier``: systems scored into
    ``out`` by earlier calls (``ScoredSystem``), whose rows are taken from the rows file. Returns
    ``{"settings": ..., "systems": {name: result}}`` and writes ``stock_voices.jsonl``.
    """
    from .rows import read_rows as _read_rows
    from .rows import write_rows as _write_rows

    out = Path(out)
    entries = [e for e in entries if e.role != "ground_truth"]
    base, voices = check_systems(entries, spec)
    cases = spec.cases(voices)
    cfg = scorers.cfg
    key = cfg.scoring_key()
    rows_path = out / ROWS_FILE
    old_rows = _read_rows(rows_path)
    old = {(r.get("system"), r.get("id")): r for r in old_rows}
    current = {e.name for e in entries}
    by_system: dict[str, list[dict]] = {}
    for e in [base, *[x for x in entries if x is not base]]:
        clips = synthesize_stock(e, cases, out, progress)
        by_system[e.name] = _stock_rows_for(
            e, cases, clips, old, _pack_digest(e.system, voices), scorers, key, out, progress
        )
        kept = [r for r in old_rows if r.get("system") not in current]
        done = [r for rows in by_system.values() for r in rows]
        _write_rows(rows_path, kept + done)  # progress survives an interruption in a later system
    earlier_names = [s.name for s in earlier if s.name not in current and s.role != "base"]
    by_system.update(_earlier_rows(old_rows, earlier_names, cases, key))
    roles = {e.name: e.role for e in entries} | {s.name: s.role for s in earlier}

    embeddings = None
    if "sim" in cfg.metrics:
        names = list(by_system)
        flat = [str(_absolute(r["audio"], out)) for n in names for r in by_system[n]]
        vecs = scorers.speaker.embed(flat)
        embeddings = {n: vecs[i * len(cases) : (i + 1) * len(cases)] for i, n in enumerate(names)}
    results = {}
    for name, rows in by_system.items():
        emb = embeddings[name] if embeddings else None
        base_emb = embeddings[base.name] if embeddings else None
        results[name] = summarise(
            rows, by_system[base.name], voices, emb, base_emb, cfg, is_base=name == base.name
        )
    for name, res in results.items():
        res["role"] = roles.get(name, "adapted")
    kept = [r for r in old_rows if r.get("system") not in by_system]
    _write_rows(rows_path, kept + [r for rows in by_system.values() for r in rows])  # with retention
    settings = {
        "base": base.name,
        "voices": voices,
        "texts": list(spec.texts),
        "seed": spec.seed,
        "n_clips": len(cases),
        "rows": ROWS_FILE,
    }
    return {"settings": settings, "systems": results}


def _absolute(p: str, out: Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else out / q


def summarise(
    rows: Sequence[dict],
    base_rows: Sequence[dict],
    voices: Sequence[str],
    emb: np.ndarray | None,
    base_emb: np.ndarray | None,
    cfg: Any,
    is_base: bool = False,
) -> dict[str, Any]:
    """One system's stock-voice results from its rows and the base's (same case order) and their
    embeddings; fills each row's ``retention``, ``nearest_clip`` and ``nearest_clip_own``."""
    from .rows import metric_estimate, point_value

    n_boot, seed = cfg.n_boot, cfg.seed
    res: dict[str, Any] = {"voices": list(voices), "n_clips": len(rows)}
    by_voice = {v: [i for i, r in enumerate(rows) if r["voice"] == v] for v in voices}
    per_voice: dict[str, dict[str, Any]] = {v: {} for v in voices}
    if any(r.get("wer") is not None for r in rows):
        res["wer"] = metric_estimate(rows, "wer", cfg)
        for v, idx in by_voice.items():
            per_voice[v]["wer"] = point_value([rows[i] for i in idx], "wer")
    if not is_base:
        if any(r.get("wer_errors") is not None for r in rows):
            paired = [
                (a["wer_errors"] - b["wer_errors"], a["wer_words"], a["voice"])
                for a, b in zip(rows, base_rows, strict=True)
                if a.get("wer_errors") is not None and b.get("wer_errors") is not None
            ]
            if paired:
                diff, words, groups = zip(*paired, strict=True)
                res["wer_base"] = metric_estimate(list(base_rows), "wer", cfg)
                res["wer_rise"] = bootstrap_ratio(diff, words, n_boot, seed, groups=groups).to_dict()
                for v, idx in by_voice.items():
                    per_voice[v]["wer_base"] = point_value([base_rows[i] for i in idx], "wer")
        changed = sorted(
            {
                a["voice"]
                for a, b in zip(rows, base_rows, strict=True)
                if a.get("pack_sha1") and b.get("pack_sha1") and a["pack_sha1"] != b["pack_sha1"]
            }
        )
        res["packs_changed"] = changed
        mixed = sum(
            1
            for a, b in zip(rows, base_rows, strict=True)
            if a.get("threads") and b.get("threads") and a["threads"] != b["threads"]
        )
        if mixed:
            log.warning(
                "%d stock clips were synthesised with another torch thread count than their base clips: "
                "an unchanged model no longer scores retention 1.0 exactly",
                mixed,
            )
        res["thread_mismatches"] = mixed
    if emb is not None and base_emb is not None and not is_base:
        _similarity_measures(rows, base_rows, voices, by_voice, emb, base_emb, res, per_voice, n_boot, seed)
    res["per_voice"] = per_voice
    return res


def _similarity_measures(
    rows: Sequence[dict],
    base_rows: Sequence[dict],
    voices: Sequence[str],
    by_voice: dict[str, list[int]],
    emb: np.ndarray,
    base_emb: np.ndarray,
    res: dict[str, Any],
    per_voice: dict[str, dict[str, Any]],
    n_boot: int,
    seed: int,
) -> None:
    """Retention per clip, the clip-level and voice-level nearest-own checks, and their summaries."""
    for i, r in enumerate(rows):
        r["retention"] = exact_cosine(emb[i], base_emb[i])
        rivals = [j for j, b in enumerate(base_rows) if b["index"] == r["index"]]
        sims = {base_rows[j]["voice"]: exact_cosine(emb[i], base_emb[j]) for j in rivals}
        r["nearest_clip"] = max(sims, key=lambda u: (sims[u], u == r["voice"]))
        r["nearest_clip_own"] = float(r["nearest_clip"] == r["voice"])
    groups = [r["voice"] for r in rows]
    res["retention"] = bootstrap_mean([r["retention"] for r in rows], n_boot, seed, groups=groups).to_dict()
    res["retention_min_voice"] = None
    for v, idx in by_voice.items():
        per_voice[v]["retention"] = bootstrap_mean(
            [rows[i]["retention"] for i in idx], n_boot, seed
        ).to_dict()
    means = {v: pv["retention"]["mean"] for v, pv in per_voice.items()}
    if means:
        worst = min(means, key=lambda v: means[v])
        tied = all(m == means[worst] for m in means.values())  # e.g. every voice exactly 1.0
        res["retention_min_voice"] = {"voice": None if tied else worst, "retention": means[worst]}
    check = nearest_own(
        {v: unit_mean(emb[idx]) for v, idx in by_voice.items()},
        {v: unit_mean(base_emb[idx]) for v, idx in by_voice.items()},
    )
    for v, c in check.items():
        per_voice[v].update(nearest=c["nearest"], kept=c["kept"], own_sim=c["own"], margin=c["margin"])
    if len(voices) > 1:
        res["nearest_own"] = {
            "kept": sum(1 for c in check.values() if c["kept"]),
            "of": len(voices),
            "not_kept": {v: c["nearest"] for v, c in check.items() if not c["kept"]},
        }
        res["nearest_own_clips"] = bootstrap_mean(
            [r["nearest_clip_own"] for r in rows], n_boot, seed, groups=groups
        ).to_dict()
