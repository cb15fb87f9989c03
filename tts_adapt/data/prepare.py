"""Turn utterances into training-ready entries: checked audio at 24 kHz, mels and phonemes, all cached.

Preparation decodes every file once, so this is where bad audio is found. Each problem is reported and
the utterance skipped (or, with ``strict``, raised naming the file); nothing here stops a long job
halfway. Results are cached by content, so a rerun (or a resumed run) only does the new files.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..text.support import describe_characters, unsupported_characters
from ..text.symbols import SYMBOL_TO_ID
from .cache import FeatureCache, compute_features, hash_file
from .report import SkipReport, require_usable
from .utterance import Utterance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareConfig:
    """Checks applied to every utterance. Durations are of the 24 kHz audio, before edge padding."""

    min_duration: float = 0.3
    max_duration: float = 30.0
    silence_dbfs: float = -50.0  # a file whose loudest 25 ms window stays below this is silent
    min_active_seconds: float = 0.1  # ...or whose windows above it add up to less than this
    max_channels: int = 2  # stereo is averaged to mono; more channels is probably the wrong file
    clip_fraction: float = 1e-3  # warn when more samples than this sit at full scale
    keep_unsupported_text: bool = False  # transcripts espeak-ng would misread: skip (default) or keep


@dataclass(frozen=True)
class PreparedUtterance:
    """An utterance whose audio passed the checks, with its phonemes and cached features."""

    utterance: Utterance
    phonemes: str
    features: Path
    num_samples: int  # 24 kHz samples, before edge padding
    num_frames: int  # mel frames of the edge-padded wave (before the even-length cut)

    @property
    def id(self) -> str:
        return self.utterance.id

    @property
    def speaker(self) -> str:
        return self.utterance.speaker

    @property
    def duration(self) -> float:
        return self.num_samples / 24000


@dataclass
class PreparedCorpus:
    """The result of :func:`prepare_corpus`: usable entries plus what happened to the rest."""

    items: list[PreparedUtterance]
    report: SkipReport
    cache_hits: int = 0
    cache_misses: int = 0
    seconds: float = 0.0
    total: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def summary(self) -> str:
        """The report's one-line account of what is used and why the rest is not (see ``SkipReport.line``)."""
        hours = sum(p.num_samples for p in self.items) / 24000 / 3600
        return self.report.line(len(self.items), hours, len({p.speaker for p in self.items}))


def _dbfs(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-12))


def decode(path: Path, sample_rate: int, max_channels: int) -> tuple[np.ndarray, int, int]:
    """``(mono float32 wave at sample_rate, original rate, channels)``; raises ``ValueError`` with a code."""
    import librosa
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise _Bad("unreadable_audio", f"cannot decode {path}: {str(e).strip() or type(e).__name__}") from e
    channels = data.shape[1]
    if channels < 1 or channels > max_channels:
        raise _Bad(
            "bad_channels",
            f"{path} has {channels} channels; expected mono (or up to {max_channels}, averaged)",
        )
    if data.shape[0] == 0:
        raise _Bad("too_short", f"{path} has no samples")
    if not np.isfinite(data).all():
        raise _Bad("non_finite", f"{path} contains NaN or infinite samples")
    wave = data.mean(axis=1) if channels > 1 else data[:, 0]
    if sr != sample_rate:
        wave = librosa.resample(wave, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr), channels


class _Bad(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def levels(wave: np.ndarray, sample_rate: int, threshold_dbfs: float) -> dict[str, float]:
    """Peak, RMS, seconds of 25 ms windows above ``threshold_dbfs``, and full-scale fraction."""
    win = max(1, int(0.025 * sample_rate))
    n = len(wave) // win
    if n:
        frames = wave[: n * win].reshape(n, win)
        frame_rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    else:
        frame_rms = np.sqrt(np.mean(wave.astype(np.float64) ** 2, keepdims=True))
    active = float(np.sum(frame_rms > 10 ** (threshold_dbfs / 20)) * win / sample_rate)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    return {
        "peak_dbfs": _dbfs(peak),
        "rms_dbfs": _dbfs(float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) if len(wave) else 0.0),
        "max_window_dbfs": _dbfs(float(frame_rms.max()) if len(frame_rms) else 0.0),
        "active_seconds": active,
        "clipped_fraction": float(np.mean(np.abs(wave) >= 0.999)) if len(wave) else 0.0,
    }


def _features_for(utt: Utterance, cache: FeatureCache, cfg: PrepareConfig) -> tuple[Path, dict, bool]:
    """Cache entry for ``utt`` (computing it on a miss): ``(path, metadata, was_hit)``."""
    path = Path(utt.audio_path)
    if not path.is_file():
        raise _Bad("audio_not_found", f"audio file not found: {path}")
    try:
        digest = hash_file(path)
    except OSError as e:
        raise _Bad("unreadable_audio", f"cannot read {path}: {e}") from e
    meta = cache.metadata(digest)
    if meta is not None:
        if meta.get("channels", 1) > cfg.max_channels:
            raise _Bad(
                "bad_channels", f"{path} has {meta['channels']} channels; expected at most {cfg.max_channels}"
            )
        return cache.path(digest), meta, True
    s = cache.settings
    wave, sr, channels = decode(path, s.sample_rate, cfg.max_channels)
    mel = compute_features(torch.from_numpy(wave), s)
    meta = {
        "source": str(path),
        "orig_sample_rate": sr,
        "channels": channels,
        "num_samples": len(wave),
        "num_frames": int(mel.shape[-1]),
        **levels(wave, s.sample_rate, cfg.silence_dbfs),
    }
    return cache.put(digest, torch.from_numpy(wave), mel, meta), meta, False


def _check_audio(
    utt: Utterance, meta: dict, cfg: PrepareConfig, sample_rate: int, report: SkipReport
) -> bool:
    """Apply the duration/level checks to an entry's metadata (so changed limits need no recompute)."""
    path = utt.audio_path
    seconds = meta["num_samples"] / sample_rate
    if seconds < cfg.min_duration:
        report.skip(
            utt.id, path, "too_short", f"{path}: {seconds:.2f} s is shorter than {cfg.min_duration} s"
        )
        return False
    if cfg.max_duration and seconds > cfg.max_duration:
        report.skip(utt.id, path, "too_long", f"{path}: {seconds:.2f} s is longer than {cfg.max_duration} s")
        return False
    threshold = 10 ** (cfg.silence_dbfs / 20)
    if meta["max_window_dbfs"] < cfg.silence_dbfs or meta["active_seconds"] < cfg.min_active_seconds:
        report.skip(
            utt.id,
            path,
            "silent",
            f"{path}: silent (loudest 25 ms window {meta['max_window_dbfs']:.1f} dBFS, "
            f"{meta['active_seconds']:.2f} s above {cfg.silence_dbfs:.0f} dBFS = {threshold:.4f})",
        )
        return False
    if meta["clipped_fraction"] > cfg.clip_fraction or meta["peak_dbfs"] > 0.01:
        report.warn(
            utt.id,
            path,
            "clipped",
            f"{path}: {100 * meta['clipped_fraction']:.2f}% of samples at full scale, "
            f"peak {meta['peak_dbfs']:.1f} dBFS",
        )
    return True


def phonemes_for(
    utts: Sequence[Utterance], phonemizer=None, report: SkipReport | None = None
) -> list[str | None]:
    """IPA for each utterance (given ones kept, the rest phonemised in one batch); ``None`` = unusable."""
    need = [i for i, u in enumerate(utts) if u.phonemes is None]
    result: list[str | None] = [u.phonemes for u in utts]
    if need:
        if phonemizer is None:
            from ..text import Phonemizer

            phonemizer = Phonemizer()
        for i, ps in zip(need, phonemizer.phonemize([utts[i].text for i in need])):
            result[i] = ps
    report = report if report is not None else SkipReport()
    for i, (u, ps) in enumerate(zip(utts, result)):
        unknown = sorted({c for c in ps or "" if c not in SYMBOL_TO_ID})
        if not any(c in SYMBOL_TO_ID and not c.isspace() for c in ps or ""):
            report.skip(
                u.id,
                u.audio_path,
                "empty_phonemes",
                f"{u.audio_path}: no usable phonemes for text {u.text!r}",
            )
            result[i] = None
        elif unknown:
            shown = " ".join(f"{c!r}(U+{ord(c):04X})" for c in unknown)
            report.warn(u.id, u.audio_path, "unknown_symbols", f"{u.audio_path}: dropped characters {shown}")
    return result


def prepare_corpus(
    utterances: Iterable[Utterance],
    *,
    cache: FeatureCache | None = None,
    phonemizer=None,
    config: PrepareConfig | None = None,
    report: SkipReport | None = None,
    strict: bool = False,
    report_path: str | os.PathLike | None = None,
    jobs: int = 1,
    progress: bool = True,
    what: str = "corpus",
) -> PreparedCorpus:
    """Check, resample, phonemise and cache every utterance; return the usable ones in input order.

    Problems go to ``report`` (saved to ``report_path`` if given, even when the run fails); with
    ``strict`` the first problem raises. Zero usable utterances is an error naming the reasons.
    """
    from ..utils.progress import progress_bar as tqdm

    t0 = time.perf_counter()
    utts = list(utterances)
    cfg = config or PrepareConfig()
    cache = cache or FeatureCache()
    cache.write_manifest()
    if report is None:
        report = SkipReport(strict=strict, path=report_path)
    else:
        report.strict = report.strict or strict
        if report_path:
            report.path = Path(report_path)
    try:
        texts_ok = []
        for u in utts:
            if not (u.phonemes or u.text).strip():
                report.skip(u.id, u.audio_path, "empty_transcript", f"{u.audio_path}: empty transcript")
                continue
            odd = unsupported_characters(u.text) if u.phonemes is None else []
            if odd:
                detail = (
                    f"{u.audio_path}: transcript {u.text[:60]!r} has characters the English front end "
                    f"cannot read: {describe_characters(odd)} (espeak-ng would speak other words)"
                )
                if not cfg.keep_unsupported_text:
                    report.skip(
                        u.id, u.audio_path, "unsupported_text", detail + "; --keep-unsupported-text keeps it"
                    )
                    continue
                report.warn(u.id, u.audio_path, "unsupported_text", detail)
            texts_ok.append(u)
        phonemes = phonemes_for(texts_ok, phonemizer, report)
        todo = [(u, ps) for u, ps in zip(texts_ok, phonemes) if ps is not None]

        def work(item):
            u, ps = item
            try:
                return u, ps, _features_for(u, cache, cfg), None
            except _Bad as bad:
                return u, ps, None, bad

        hits = misses = 0
        items: list[PreparedUtterance] = []
        sr = cache.settings.sample_rate
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = pool.map(work, todo) if jobs > 1 else map(work, todo)
            bar = tqdm(results, total=len(todo), desc=f"preparing {what}", unit="utt", disable=not progress)
            for u, ps, got, bad in bar:
                if bad is not None:
                    report.skip(u.id, u.audio_path, bad.code, bad.detail)
                    continue
                path, meta, hit = got
                hits += hit
                misses += not hit
                if _check_audio(u, meta, cfg, sr, report):
                    u = u if u.duration is not None else u.replace(duration=meta["num_samples"] / sr)
                    items.append(
                        PreparedUtterance(u, ps, path, int(meta["num_samples"]), int(meta["num_frames"]))
                    )
    finally:
        report.save()
    result = PreparedCorpus(items, report, hits, misses, time.perf_counter() - t0, len(utts))
    log.info("prepared %s: %s; cache %d hits, %d computed", what, result.summary(), hits, misses)
    require_usable(len(items), len(utts), report, what)
    return result
