"""A corpus voiced by another speech engine's voices (Piper, flite, festival, ...), one speaker per voice.

Same layout as the espeak-ng corpus (:mod:`.synthetic`): ``<subset>/<speaker>/<chapter>/<id>.wav`` at
24 kHz 16-bit with ``.normalized.txt``/``.original.txt``, a ``.trans.tsv`` per chapter and
``speakers.json``, which here also names the engine, its version and each voice's licence (the
licence texts the engine ships are copied to ``licenses/<speaker>/``).

Sentences: ``test_utterances`` held-out sentences, the same for every voice (chapter 2, in the test
subset), so that held-out comparisons are on the same text; ``utterances`` training sentences per
voice (chapter 1), drawn from a stream of that voice's own and never one of the held-out sentences.
The held-out sentences do not depend on the number of training sentences, and the training sentences
of a smaller corpus are the first ones of a larger one. ``test_speakers`` moves the last voices, with
all their sentences, to the test subset (held-out speakers). Generation resumes: a rerun with the
same settings only writes what is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..utils.io import atomic_path, write_json, write_text
from .engines import Engine, EngineVoice, get_engine, to_corpus_rate
from .sentences import make_sentences
from .synthetic import CORPUS_FORMAT, open_corpus_folder, write_corpus_wav

log = logging.getLogger(__name__)

TRAIN_CHAPTER = "1"
TEST_CHAPTER = "2"
TEST_STREAM = 2  # sentence streams: [seed, TEST_STREAM] and [seed, TRAIN_STREAM, voice key]
TRAIN_STREAM = 1
LICENSE_FOLDER = "licenses"


@dataclass(frozen=True)
class PlannedUtterance:
    voice: EngineVoice
    subset: str
    chapter: str
    id: str
    original: str
    normalized: str
    seed: tuple[int, ...]  # the engine's sampling seed for this utterance


def voice_key(voice: EngineVoice) -> int:
    """A stable number for a voice (its sentence stream and noise do not depend on the voice list)."""
    return zlib.crc32(voice.speaker.encode("utf-8"))


def held_out_sentences(n: int, seed: int) -> list[tuple[str, str]]:
    return make_sentences(n, [seed, TEST_STREAM]) if n else []


def training_sentences(n: int, seed: int, voice: EngineVoice, exclude: set[str]) -> list[tuple[str, str]]:
    """``n`` sentences for ``voice``, none of whose normalised text is in ``exclude``."""
    pool = make_sentences(n + len(exclude), [seed, TRAIN_STREAM, voice_key(voice)])
    return [pair for pair in pool if pair[1] not in exclude][:n]


def voice_corpus_plan(
    voices: list[EngineVoice],
    utterances: int,
    test_utterances: int,
    seed: int,
    subset: str,
    test_subset: str,
    test_speakers: int = 0,
) -> list[PlannedUtterance]:
    test = held_out_sentences(test_utterances, seed)
    exclude = {norm for _, norm in test}
    plan = []
    for i, voice in enumerate(voices):
        held_out_voice = i >= len(voices) - test_speakers
        key = voice_key(voice)
        parts = [
            (
                TRAIN_CHAPTER,
                test_subset if held_out_voice else subset,
                training_sentences(utterances, seed, voice, exclude),
            ),
            (TEST_CHAPTER, test_subset, test),
        ]
        for chapter, where, sentences in parts:
            for j, (orig, norm) in enumerate(sentences):
                utt_id = f"{voice.speaker}_{chapter}_{j:06d}_000000"
                plan.append(
                    PlannedUtterance(voice, where, chapter, utt_id, orig, norm, (seed, key, int(chapter), j))
                )
    return plan


def _settings(engine: Engine, voices, utterances, test_utterances, test_speakers, seed, subset, test_subset):
    return dict(
        format=CORPUS_FORMAT,
        engine=engine.name,
        voices=[v.name for v in voices],
        utterances=utterances,
        test_utterances=test_utterances,
        test_speakers=test_speakers,
        seed=seed,
        subset=subset,
        test_subset=test_subset,
    )


def _copy_licenses(out: Path, engine: Engine, voices: list[EngineVoice]) -> dict[str, list[str]]:
    copied: dict[str, list[str]] = {}
    for voice in voices:
        for src in engine.license_files(voice):
            dest = out / LICENSE_FOLDER / voice.speaker / src.name
            if not dest.exists():
                with atomic_path(dest) as tmp:
                    shutil.copyfile(src, tmp)
            copied.setdefault(voice.speaker, []).append(dest.relative_to(out).as_posix())
    return copied


def make_voice_corpus(
    out: str | os.PathLike,
    engine: str | Engine,
    voices: list[str] | None = None,
    utterances: int = 40,
    *,
    test_utterances: int = 0,
    test_speakers: int = 0,
    seed: int = 0,
    subset: str = "train-synth",
    test_subset: str = "test-synth",
    jobs: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write (or complete) a corpus at ``out`` voiced by ``engine``'s ``voices``; return ``out``.

    ``voices`` are the engine's voice names (``["all"]`` for every one; default its first voice).
    A missing engine or voice is an :class:`~tts_adapt.data.engines.EngineNotInstalled` naming the
    package to install, raised before anything is written.
    """
    from ..utils.progress import progress_bar as tqdm

    engine = get_engine(engine) if isinstance(engine, str) else engine
    chosen = engine.select(voices)
    if utterances < 0 or test_utterances < 0 or utterances + test_utterances < 1:
        raise ValueError(
            f"need at least one utterance per voice, got --utterances {utterances} "
            f"and --test-utterances {test_utterances}"
        )
    if not 0 <= test_speakers < len(chosen):
        raise ValueError(
            f"--test-speakers must be in [0, {len(chosen) - 1}] for {len(chosen)} voices, got {test_speakers}"
        )
    if subset == test_subset:
        raise ValueError("the training and test subsets need different names")
    engine.check(chosen)

    out = Path(out)
    settings = _settings(
        engine, chosen, utterances, test_utterances, test_speakers, seed, subset, test_subset
    )
    meta_path = open_corpus_folder(out, settings, overwrite, extra=(LICENSE_FOLDER,))
    plan = voice_corpus_plan(chosen, utterances, test_utterances, seed, subset, test_subset, test_speakers)

    def manifest(complete: bool) -> dict:
        return {
            "settings": settings,
            "complete": complete,
            "engine": {"name": engine.name, "deterministic": engine.deterministic, **engine.version()},
            "voices": [
                {**v.manifest(), "subsets": sorted({p.subset for p in plan if p.voice is v})} for v in chosen
            ],
            "license_files": licenses,
        }

    licenses = _copy_licenses(out, engine, chosen)
    write_json(meta_path, manifest(False))

    def folder(p: PlannedUtterance) -> Path:
        return out / p.subset / p.voice.speaker / p.chapter

    def work(p: PlannedUtterance) -> bool:
        wav = folder(p) / f"{p.id}.wav"
        if wav.exists() and (folder(p) / f"{p.id}.normalized.txt").exists():
            return False
        write_corpus_wav(wav, to_corpus_rate(engine.synthesize(p.normalized, p.voice, p.seed)))
        write_text(folder(p) / f"{p.id}.original.txt", p.original + "\n")
        write_text(folder(p) / f"{p.id}.normalized.txt", p.normalized + "\n")
        return True

    jobs = jobs or min(4, os.cpu_count() or 1)
    desc = f"{engine.name} voices"
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        made = sum(tqdm(pool.map(work, plan), total=len(plan), desc=desc, unit="utt", disable=not progress))
    chapters: dict[Path, list[str]] = {}
    for p in plan:
        chapters.setdefault(folder(p), []).append(f"{p.id}\t{p.original}\t{p.normalized}\n")
    for where, rows in chapters.items():
        write_text(where / f"{where.parent.name}_{where.name}.trans.tsv", "".join(rows))
    write_json(meta_path, manifest(True))
    log.info(
        "%s corpus at %s: %d voices, %d utterances (%d newly written)",
        engine.name,
        out,
        len(chosen),
        len(plan),
        made,
    )
    return out
