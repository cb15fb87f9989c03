"""The evaluation protocol: synthesise the seeded test set with every system, score, aggregate.

For each system (the base model, one or more adapted models, and the ground-truth recordings as the
ceiling row) and each test case it writes the audio, then computes per utterance:

* ``sim``: cosine similarity to the speaker's profile (unit mean embedding of that speaker's test
  recordings, leaving out the case's own recording); ``sim_ref``: similarity to the reference prompt;
  ``sim_other``: mean similarity to the *other* speakers' profiles of the same set, and ``sim_margin``
  = ``sim - sim_other`` (does the synthesis sound like its own speaker rather than any speaker?);
* ``wer``/``cer`` from an ASR backend; ``per`` from a CTC phoneme recogniser;
* ``mcd``: MCD-DTW against the ground-truth recording of the same text;
* ``dnsmos`` (overall) with ``dnsmos_sig``/``dnsmos_bak``; ``distillmos`` (Distill-MOS).

WER uses Whisper base from its PyPI packages when installed (``asr.default_asr_backend``), and every row
keeps the recogniser's transcript (``asr_text``) beside its reference text for the report.

Outputs in ``out_dir``: ``test_set.jsonl``, ``audio/<system>/<set>/<id>.wav``, ``utterances.jsonl`` (one
row per system x case), ``aggregates.json`` (bootstrap 95 % intervals per system, set and metric;
per-speaker means; retention = adapted / base on the held-out speakers, paired bootstrap). Synthesis
resumes from the audio already written; rows are reused when audio and scoring settings are unchanged.

Voice-pack models (Kokoro and folders adapted from it) speak the target sentences in their own voice
(an adapted folder's learned voice), not from the case's reference recording, so ``sim_ref`` is left
empty for them; they cannot speak held-out speakers from recordings at all. What adaptation does to
their shipped voices is the stock-voice set instead (``stock=``, :mod:`.stock_voices`): identity
retention, WER and the nearest-own-voice check of every chosen stock voice against the base model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .audio_io import write_wave
from .rows import (  # noqa: F401  (error_counts, metric_estimate, point_value: their callers' names)
    CORPUS_RATES,
    _pooled,
    error_counts,
    metric_estimate,
    point_value,
    stored_audio_path,
)
from .rows import (
    file_sha1 as _file_sha1,
)
from .rows import (
    read_rows as _read_rows,
)
from .rows import (
    safe_name as _safe,
)
from .rows import (
    write_rows as _write_rows,
)
from .stats import bootstrap_ratio, bootstrap_ratio_by_group
from .systems import Synthesizer
from .testset import TestCase, write_test_set

if TYPE_CHECKING:
    from .stock_voices import StockVoices
from .text_norm import TEXT_NORM_VERSION

log = logging.getLogger(__name__)

ALL_METRICS = ("sim", "wer", "per", "mcd", "dnsmos", "distillmos")
METRIC_FIELDS = (
    "sim",
    "sim_ref",
    "sim_other",
    "sim_margin",
    "wer",
    "cer",
    "per",
    "mcd",
    "dnsmos",
    "dnsmos_sig",
    "dnsmos_bak",
    "distillmos",
)
HIGHER_IS_BETTER = {
    "sim": True,
    "sim_ref": True,
    "sim_other": False,
    "sim_margin": True,
    "wer": False,
    "cer": False,
    "per": False,
    "mcd": False,
    "dnsmos": True,
    "dnsmos_sig": True,
    "dnsmos_bak": True,
    "distillmos": True,
}
ROLES = ("base", "adapted", "ground_truth", "other")
GROUND_TRUTH = "ground_truth"


def distillmos_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("distillmos") is not None


def default_metrics() -> tuple[str, ...]:
    """sim, wer, mcd, dnsmos, and distillmos where it is installed."""
    return ("sim", "wer", "mcd", "dnsmos") + (("distillmos",) if distillmos_installed() else ())


@dataclass
class EvalConfig:
    """``asr_backend=None``: Whisper base when installed, else PocketSphinx (``default_asr_backend``)."""

    metrics: tuple[str, ...] = field(default_factory=default_metrics)
    speaker_backend: str = "resemblyzer"
    speaker_model: str | None = None
    asr_backend: str | None = None
    asr_model: str | None = None
    per_model: str | None = None
    heldout_dnsmos: bool = True
    n_boot: int = 2000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        bad = set(self.metrics) - set(ALL_METRICS)
        if bad:
            raise ValueError(f"unknown metric(s) {sorted(bad)}; choose from {list(ALL_METRICS)}")
        if "per" in self.metrics and not self.per_model:
            raise ValueError(
                "metric 'per' needs a phoneme recogniser (--per-model; see `tts-adapt train-per`)"
            )
        if self.asr_backend is None and "wer" in self.metrics:
            from .asr import default_asr_backend

            self.asr_backend = default_asr_backend()

    def scoring_key(self) -> str:
        """Identifies everything that changes a row's numbers (not the bootstrap settings)."""
        d = asdict(self)
        for k in ("n_boot", "device"):
            d.pop(k)
        d["text_norm"] = TEXT_NORM_VERSION
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class SystemEntry:
    """One row of the comparison. ``system`` is ``None`` for the ground truth."""

    name: str
    role: str
    system: Synthesizer | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"system {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if self.role != GROUND_TRUTH and self.system is None:
            raise ValueError(f"system {self.name!r} has no synthesiser")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(
                f"system name {self.name!r} must be non-empty, without '/' and not start with '.'"
            )


@dataclass
class ScoredSystem:
    """A system scored by an earlier call into the same folder (kept by ``accumulate=True``)."""

    name: str
    role: str
    info: dict[str, Any] = field(default_factory=dict)


class Scorers:
    """Builds each evaluator on first use and keeps it for every system."""

    def __init__(self, cfg: EvalConfig, cache_dir: str | os.PathLike | None) -> None:
        self.cfg = cfg
        self.cache_dir = cache_dir
        self._speaker = self._asr = self._per = self._dnsmos = self._distillmos = None

    @property
    def speaker(self):
        if self._speaker is None:
            from .cache import EmbeddingCache
            from .similarity import get_speaker_encoder

            self._speaker = get_speaker_encoder(
                self.cfg.speaker_backend,
                EmbeddingCache(self.cache_dir),
                self.cfg.device,
                self.cfg.speaker_model,
            )
        return self._speaker

    @property
    def asr(self):
        if self._asr is None:
            from .asr import get_transcriber

            self._asr = get_transcriber(self.cfg.asr_backend, self.cfg.asr_model, self.cfg.device)
        return self._asr

    @property
    def per(self):
        if self._per is None:
            from .per import PhonemeRecognizer

            self._per = PhonemeRecognizer.load(self.cfg.per_model, self.cfg.device)
        return self._per

    @property
    def dnsmos(self):
        if self._dnsmos is None:
            from .quality import DNSMOS

            self._dnsmos = DNSMOS()
        return self._dnsmos

    @property
    def distillmos(self):
        if self._distillmos is None:
            from .quality import DistillMOS

            self._distillmos = DistillMOS(self.cfg.device)
        return self._distillmos


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


class SpeakerProfiles:
    """Leave-one-out speaker centroids from the test set's ground-truth recordings.

    The pool is every recording of the speaker the test set names (case recordings and prompts). A
    case's profile never holds its own recording nor its prompt: a synthesis conditioned on the
    prompt would otherwise be scored partly against the very recording it was given. A speaker with no
    other recording has no profile (similarity ``None``), never the prompt alone.
    """

    def __init__(self, cases: Sequence[TestCase], scorers: Scorers) -> None:
        from .similarity import centroid

        paths = sorted({c.audio_path for c in cases} | {c.prompt_path for c in cases})
        embs = scorers.speaker.embed(paths)
        self.emb = dict(zip(paths, embs, strict=True))
        self.profile: dict[str, np.ndarray] = {}
        for c in cases:
            left_out = {c.audio_path, c.prompt_path}
            pool = {p for x in cases if x.speaker == c.speaker for p in (x.audio_path, x.prompt_path)}
            own = sorted(pool - left_out)
            if own:
                self.profile[c.key] = centroid(np.stack([self.emb[p] for p in own]))
        # one whole-speaker centroid per (set, speaker) for the "other speakers" comparison
        self.speaker_profile: dict[tuple[str, str], np.ndarray] = {}
        for key in sorted({(c.set, c.speaker) for c in cases}):
            pool = sorted(
                {p for x in cases if (x.set, x.speaker) == key for p in (x.audio_path, x.prompt_path)}
            )
            self.speaker_profile[key] = centroid(np.stack([self.emb[p] for p in pool]))

    def others(self, case: TestCase) -> list[np.ndarray]:
        """Profiles of the other speakers in the case's set."""
        return [v for (s, spk), v in self.speaker_profile.items() if s == case.set and spk != case.speaker]


def synthesize_all(
    entry: SystemEntry, cases: Sequence[TestCase], out_dir: Path, progress: bool = True
) -> list[str]:
    """Audio path per case: the recording itself for ground truth, else synthesised (resumable)."""
    from ..utils.progress import progress_bar as tqdm

    if entry.role == GROUND_TRUTH:
        return [c.audio_path for c in cases]
    paths = []
    for c in tqdm(cases, desc=f"synthesising {entry.name}", disable=not progress, unit="utt"):
        p = out_dir / "audio" / entry.name / c.set / f"{_safe(c.id)}.wav"
        if not p.exists():
            wave, sr = entry.system.synthesize(c.text, Path(c.prompt_path), c.seed)
            wave = np.asarray(wave, dtype=np.float32).reshape(-1)
            if wave.size == 0 or not np.all(np.isfinite(wave)):
                raise RuntimeError(f"system {entry.name} produced empty or non-finite audio for case {c.key}")
            write_wave(p, wave, sr)
        paths.append(str(p))
    return paths


def score_cases(
    entry: SystemEntry,
    cases: Sequence[TestCase],
    audio: Sequence[str],
    scorers: Scorers,
    profiles: SpeakerProfiles | None,
    progress: bool = True,
) -> list[dict]:
    """One row of metrics per case (metrics that do not apply are ``None``)."""
    from ..utils.progress import progress_bar as tqdm
    from .mcd import mcd_dtw

    cfg = scorers.cfg
    rows = [
        {
            "system": entry.name,
            "role": entry.role,
            "set": c.set,
            "id": c.id,
            "speaker": c.speaker,
            "text": c.text,
            "prompt_id": c.prompt_id,
            "seed": c.seed,
            "audio": a,
        }
        for c, a in zip(cases, audio, strict=True)
    ]
    if "sim" in cfg.metrics and profiles is not None and rows:
        for r, f in zip(rows, similarity_fields(entry, cases, audio, scorers, profiles), strict=True):
            r.update(f)
    for r, c, a in tqdm(
        list(zip(rows, cases, audio, strict=True)),
        desc=f"scoring {entry.name}",
        disable=not progress,
        unit="utt",
    ):
        if "wer" in cfg.metrics:
            s = scorers.asr.score(a, c.text)
            r.update(wer=s["wer"], cer=s["cer"], asr_text=s["hypothesis"])
            r.update(error_counts(c.text, s["hypothesis"]))
        if "per" in cfg.metrics:
            s = scorers.per.per(a, c.phonemes or "")
            r.update(per=s["per"], asr_phonemes=s["phonemes"])
        if "mcd" in cfg.metrics and entry.role != GROUND_TRUTH:
            r["mcd"] = mcd_dtw(c.audio_path, a)
        if "dnsmos" in cfg.metrics and (c.set == "target" or cfg.heldout_dnsmos):
            d = scorers.dnsmos.score([a])[0]
            r.update(dnsmos=d["ovrl"], dnsmos_sig=d["sig"], dnsmos_bak=d["bak"])
        if "distillmos" in cfg.metrics and (c.set == "target" or cfg.heldout_dnsmos):
            r["distillmos"] = scorers.distillmos.score([a])[0]
    return rows


SIM_FIELDS = ("sim", "sim_ref", "sim_other", "sim_margin")


def similarity_fields(
    entry: SystemEntry,
    cases: Sequence[TestCase],
    audio: Sequence[str],
    scorers: Scorers,
    profiles: SpeakerProfiles,
) -> list[dict[str, float | None]]:
    """``sim``, ``sim_ref`` and, where other speakers exist, ``sim_other`` and ``sim_margin`` per case.

    They depend on the whole test set (the profiles), so a reused row gets them anew; the embeddings
    come from the cache, which makes that cheap."""
    takes_reference = not getattr(entry.system, "uses_voice_packs", False)
    out: list[dict[str, float | None]] = []
    for c, e in zip(cases, scorers.speaker.embed(list(audio)), strict=True):
        profile = profiles.profile.get(c.key)
        f: dict[str, float | None] = {
            "sim": float(e @ profile) if profile is not None else None,
            "sim_ref": float(e @ profiles.emb[c.prompt_path]) if takes_reference else None,
        }
        others = profiles.others(c)
        if others and f["sim"] is not None:
            f["sim_other"] = float(np.mean([e @ o for o in others]))
            f["sim_margin"] = f["sim"] - f["sim_other"]
        out.append(f)
    return out


def _add_phonemes(cases: list[TestCase]) -> list[TestCase]:
    from dataclasses import replace

    from ..text import Phonemizer

    todo = [c for c in cases if not c.phonemes]
    if not todo:
        return cases
    ipa = dict(zip([c.key for c in todo], Phonemizer().phonemize([c.text for c in todo]), strict=True))
    return [replace(c, phonemes=ipa[c.key]) if c.key in ipa else c for c in cases]


def check_voice_pack_systems(entries: Sequence[SystemEntry], cases: Sequence[TestCase]) -> None:
    """A voice-pack model has no style encoder: held-out speakers (zero-shot from a recording) are out
    of its reach, and saying so beats scoring its default voice against them."""
    if not any(c.set == "heldout" for c in cases):
        return
    packs = [e.name for e in entries if getattr(e.system, "uses_voice_packs", False)]
    if packs:
        raise ValueError(
            f"system(s) {', '.join(packs)} speak with voice packs (Kokoro): they cannot speak held-out "
            "speakers from their recordings; drop --heldout and measure the stock voices instead "
            "(--stock-voices all)"
        )


def run_evaluation(
    entries: Sequence[SystemEntry],
    cases: Sequence[TestCase],
    out_dir: str | os.PathLike,
    cfg: EvalConfig | None = None,
    progress: bool = True,
    accumulate: bool = False,
    stock: StockVoices | None = None,
) -> dict:
    """Run the protocol (see module docstring); returns the aggregates also written to disk.

    ``accumulate``: the aggregates also cover systems an earlier call scored into ``out_dir`` with the
    same scoring settings on the same cases (a grid of runs evaluated one run per call). ``stock``: also
    the stock-voice measures of voice-pack systems against the base (``cases`` may then be empty)."""
    from ..utils.io import write_json

    cfg = cfg or EvalConfig()
    out = Path(out_dir)
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"system names must be unique, got {names}")
    if sum(e.role == "base" for e in entries) > 1:
        raise ValueError("at most one system can have the role 'base'")
    cases = list(cases)
    if not cases and stock is None:
        raise ValueError("nothing to evaluate: no test cases and no stock voices")
    check_voice_pack_systems(entries, cases)
    if stock is not None:
        from .stock_voices import check_systems

        check_systems(entries, stock)
    out.mkdir(parents=True, exist_ok=True)
    if "per" in cfg.metrics:
        cases = _add_phonemes(cases)
    write_test_set(out / "test_set.jsonl", cases)
    scorers = Scorers(cfg, out / "cache")
    profiles = SpeakerProfiles(cases, scorers) if "sim" in cfg.metrics and cases else None

    rows_path = out / "utterances.jsonl"
    key = cfg.scoring_key()
    old = {
        (r.get("system"), r.get("set"), r.get("id")): r
        for r in _read_rows(rows_path)
        if r.get("scoring_key") == key
    }
    all_rows: list[dict] = []
    for entry in entries:
        audio = synthesize_all(entry, cases, out, progress)
        shas = [_file_sha1(a) for a in audio]
        reuse, todo = {}, []
        for i, (c, sha) in enumerate(zip(cases, shas, strict=True)):
            prev = old.get((entry.name, c.set, c.id))
            if prev is not None and prev.get("audio_sha1") == sha:
                reuse[i] = prev
            else:
                todo.append(i)
        reused = sorted(reuse)
        if profiles is not None and reused:  # the profiles may differ from the run that scored them
            fields = similarity_fields(
                entry, [cases[i] for i in reused], [audio[i] for i in reused], scorers, profiles
            )
            for i, f in zip(reused, fields, strict=True):
                kept_fields = {k: v for k, v in reuse[i].items() if k not in SIM_FIELDS}
                reuse[i] = {**kept_fields, **f}
        fresh = score_cases(
            entry, [cases[i] for i in todo], [audio[i] for i in todo], scorers, profiles, progress
        )
        for i, r in zip(todo, fresh, strict=True):
            r["audio"] = stored_audio_path(r["audio"], out)
            r["audio_sha1"] = shas[i]
            r["scoring_key"] = key
            reuse[i] = r
        all_rows += [reuse[i] for i in range(len(cases))]
        kept = [r for r in _read_rows(rows_path) if r.get("system") not in {e.name for e in entries}]
        _write_rows(rows_path, kept + all_rows)  # progress survives an interruption in a later system
    listed: list[Any] = list(entries)
    earlier: list[tuple[ScoredSystem, list[dict]]] = []
    if accumulate:
        earlier = _earlier_systems(out, rows_path, key, cases, {e.name for e in entries})
        if stock is not None:  # an earlier system is kept only if it was measured on the stock set too
            from .stock_voices import check_systems, earlier_complete

            _, voices = check_systems(entries, stock)
            complete = earlier_complete(out, [e.name for e, _ in earlier], cfg, stock, voices)
            earlier = [(e, rows) for e, rows in earlier if e.name in complete]
        for entry, rows in earlier:
            listed.append(entry)
            all_rows += rows
    agg = aggregate(all_rows, listed, cfg)
    agg["test_set"] = {
        "n_cases": len(cases),
        "sets": sorted({c.set for c in cases} | ({"stock"} if stock is not None else set())),
        "speakers": {s: sorted({c.speaker for c in cases if c.set == s}) for s in ("target", "heldout")},
    }
    if stock is not None:
        from .stock_voices import run_stock_voices

        measured = run_stock_voices(entries, stock, out, scorers, progress, [e for e, _ in earlier])
        agg["stock"] = measured["settings"]
        for name, result in measured["systems"].items():
            agg["systems"][name]["stock"] = result
    write_json(out / "aggregates.json", agg)
    return agg


# rates pooled over a corpus: (errors field, reference-length field)
def _earlier_systems(
    out: Path, rows_path: Path, key: str, cases: Sequence[TestCase], current: set[str]
) -> list[tuple[ScoredSystem, list[dict]]]:
    """Systems of earlier calls whose rows cover exactly these cases with these scoring settings."""
    path = out / "aggregates.json"
    if not path.is_file():
        return []
    try:
        before = json.loads(path.read_text(encoding="utf-8")).get("systems", {})
    except (OSError, json.JSONDecodeError):
        log.warning("cannot read %s; earlier systems are not kept", path)
        return []
    wanted = {(c.set, c.id) for c in cases}
    rows: dict[str, list[dict]] = {}
    for r in _read_rows(rows_path):
        if r.get("system") not in current and r.get("scoring_key") == key:
            rows.setdefault(r["system"], []).append(r)
    out_list = []
    for name, s in before.items():
        mine = [r for r in rows.get(name, []) if (r["set"], r["id"]) in wanted]
        if name in current or {(r["set"], r["id"]) for r in mine} != wanted:
            continue
        out_list.append((ScoredSystem(name, s.get("role", "adapted"), s.get("info") or {}), mine))
    return out_list


def aggregate(rows: Sequence[dict], entries: Sequence[Any], cfg: EvalConfig) -> dict:
    """Bootstrap means per system/set/metric, per-speaker means, and held-out retention vs the base."""
    by_system: dict[str, list[dict]] = {}
    for r in rows:
        by_system.setdefault(r["system"], []).append(r)
    systems: dict[str, Any] = {}
    for e in entries:
        mine = by_system.get(e.name, [])
        sets: dict[str, dict] = {}
        per_speaker: dict[str, dict] = {}
        for set_name in sorted({r["set"] for r in mine}):
            sub = [r for r in mine if r["set"] == set_name]
            sets[set_name] = {}
            for m in METRIC_FIELDS:
                est = metric_estimate(sub, m, cfg)
                if est is not None:
                    sets[set_name][m] = est
            per_speaker[set_name] = {}
            for spk in sorted({r["speaker"] for r in sub}):
                srows = [r for r in sub if r["speaker"] == spk]
                per_speaker[set_name][spk] = {
                    m: point_value(srows, m)
                    for m in METRIC_FIELDS
                    if any(r.get(m) is not None for r in srows)
                }
        systems[e.name] = {"role": e.role, "info": e.info, "sets": sets, "per_speaker": per_speaker}

    base = next((e.name for e in entries if e.role == "base"), None)
    if base is not None:
        base_rows = {(r["set"], r["id"]): r for r in by_system.get(base, [])}
        for e in entries:
            if e.role != "adapted":
                continue
            retention, by_speaker = {}, {}
            pairs = [
                (r, base_rows.get((r["set"], r["id"])))
                for r in by_system.get(e.name, [])
                if r["set"] == "heldout"
            ]
            pairs = [(a, b) for a, b in pairs if b is not None]
            for m in METRIC_FIELDS:
                key = m
                if m in CORPUS_RATES and all(a.get(CORPUS_RATES[m][0]) is not None for a, _ in pairs):
                    key = CORPUS_RATES[m][0]  # ratio of corpus rates on the same texts: errors / errors
                ab = [
                    (a.get(key), b.get(key), a["speaker"])
                    for a, b in pairs
                    if a.get(key) is not None and b.get(key) is not None
                ]
                if ab:
                    num, den, spk = zip(*ab, strict=True)
                    retention[m] = bootstrap_ratio(num, den, cfg.n_boot, cfg.seed, groups=spk).to_dict()
                    by_speaker[m] = bootstrap_ratio_by_group(num, den, spk, cfg.n_boot, cfg.seed).to_dict()
            systems[e.name]["retention"] = retention
            systems[e.name]["retention_speaker"] = by_speaker
    return {
        "config": asdict(cfg),
        "base": base,
        "systems": systems,
        "higher_is_better": HIGHER_IS_BETTER,
        "interval": "two-level bootstrap 95% (speakers, then their utterances; percentile)",
    }
