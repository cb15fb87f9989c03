"""Pre-training batches for a curvature pass: a seeded utterance subset, real-length batches, loaded lazily.

The batches form a ``Sequence`` so that :func:`~tts_adapt.curvature.estimate` can skip to a resume
point (or to a rank's share) without loading the audio of skipped batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Mel frames (even length) an utterance needs for the curvature objective's crops (two 41-frame windows).
MIN_FRAMES = 2 * 41


class LazyBatches(Sequence):
    """``batches[i]`` = ``collate([dataset[j] for j in index_batches[i]])``, built on demand."""

    def __init__(self, dataset: Any, index_batches: list[list[int]]) -> None:
        from ..data import collate

        self.dataset = dataset
        self.index_batches = [list(b) for b in index_batches]
        self._collate = collate

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, i: int):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._collate([self.dataset[j] for j in self.index_batches[i]])

    @property
    def num_utterances(self) -> int:
        return sum(len(b) for b in self.index_batches)


@dataclass
class DataSpec:
    data: str
    subsets: list[str] | None = None  # LibriTTS subsets
    speakers: list[str] | None = None
    audio_root: str | None = None  # for a file list
    mic: str = "mic1"  # VCTK
    max_utterances: int | None = None
    seed: int = 0
    max_frames: int = 4000
    max_batch_size: int | None = 16
    min_seconds: float = 1.1
    max_seconds: float = 30.0
    keep_unsupported_text: bool = False
    text: dict[str, Any] | None = None  # the model's text settings (config.text_settings); None: StyleTTS 2

    def describe(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "subsets": self.subsets,
            "speakers": self.speakers,
            "max_utterances": self.max_utterances,
            "seed": self.seed,
            "max_frames": self.max_frames,
            "max_batch_size": self.max_batch_size,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
        }


def corpus_batches(
    spec: DataSpec, progress: bool = True, jobs: int = 1, report: Any = None
) -> tuple[LazyBatches, dict[str, Any]]:
    """Load, subset, prepare (phonemise + cache features) and batch a corpus; ``(batches, description)``.

    Every utterance left out is accounted for in ``report`` (a :class:`~tts_adapt.data.SkipReport`):
    reading and preparation problems, durations outside ``[min_seconds, max_seconds]`` and clips too
    short for the decoder crop are skipped with a reason; ``--speakers``/``--max-utterances`` count as
    not selected.
    """
    from ..data import (
        FrameBudgetBatchSampler,
        PrepareConfig,
        SkipReport,
        TTSDataset,
        filter_duration,
        load_corpus,
        prepare_corpus,
        random_subset,
        select_speakers,
    )
    from ..data.corpus import detect_layout

    report = report if report is not None else SkipReport()
    path = spec.data.split("::", 1)[0] if "::" in spec.data and not Path(spec.data).exists() else spec.data
    layout = detect_layout(path)
    options: dict[str, Any] = {}
    if layout == "libritts" and spec.subsets:
        options["subsets"] = spec.subsets
    if layout == "vctk":
        options["mic"] = spec.mic
    utts = load_corpus(spec.data, audio_root=spec.audio_root, layout=layout, report=report, **options)
    report.count_found(len(utts))
    if spec.speakers:
        before = len(utts)
        utts = select_speakers(utts, spec.speakers)
        report.leave_out("--speakers", before, len(utts))
    utts = filter_duration(utts, min_seconds=spec.min_seconds, max_seconds=spec.max_seconds, report=report)
    if not utts:
        limits = f"{spec.min_seconds} and {spec.max_seconds} s"
        raise ValueError(f"{spec.data}: no utterance between {limits} ({report.line(0)})")
    if spec.max_utterances is not None:
        if spec.max_utterances <= 0:
            raise ValueError("--max-utterances must be positive")
        before = len(utts)
        utts = random_subset(utts, min(spec.max_utterances, len(utts)), seed=spec.seed)
        report.leave_out("--max-utterances", before, len(utts))
    from ..text import Phonemizer

    text = spec.text or {"vocab": None, "word_tokenize": True}
    prepared = prepare_corpus(
        utts,
        config=PrepareConfig(keep_unsupported_text=spec.keep_unsupported_text),
        phonemizer=Phonemizer(word_tokenize=text["word_tokenize"]),
        report=report,
        progress=progress,
        jobs=jobs,
        what="curvature data",
    )
    items = []
    for p in prepared.items:
        if p.num_frames - p.num_frames % 2 >= MIN_FRAMES:
            items.append(p)
        else:
            report.skip(
                p.id,
                p.utterance.audio_path,
                "too_short",
                f"{p.utterance.audio_path}: {p.num_frames} mel frames, fewer than the {MIN_FRAMES} "
                "the curvature objective needs",
            )
    report.save()
    if not items:
        raise ValueError(f"{spec.data}: no usable utterance of at least ~1 s after preparation")
    dataset = TTSDataset(items, seed=spec.seed, vocab=text["vocab"])
    sampler = FrameBudgetBatchSampler(
        dataset.frame_lengths,
        spec.max_frames,
        seed=spec.seed,
        shuffle=True,
        max_batch_size=spec.max_batch_size,
    )
    batches = LazyBatches(dataset, sampler.batches(0))
    desc = {
        **spec.describe(),
        "utterances": len(items),
        "batches": len(batches),
        "ids_head": [p.id for p in items[:3]],
    }
    return batches, desc
