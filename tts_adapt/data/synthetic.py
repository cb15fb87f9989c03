"""A small multi-speaker corpus voiced by espeak-ng, in the LibriTTS layout, for tests and demos.

Each "speaker" is a fixed espeak-ng voice: an English accent, a voice variant (formants, pitch range,
breathiness), a base pitch and a speaking rate, drawn from ``seed``. Utterances jitter pitch and rate
a little around the speaker's values so that one speaker is not a single repeated timbre. Output:
``<out>/<subset>/<speaker>/<chapter>/<id>.wav`` (24 kHz, 16-bit) with ``.normalized.txt`` and
``.original.txt``, a ``<speaker>_<chapter>.trans.tsv`` per chapter, and ``speakers.json``.
Generation is resumable: rerunning with the same settings only writes missing files.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..utils.io import atomic_path, write_json, write_text
from .sentences import make_sentences

log = logging.getLogger(__name__)

ACCENTS = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
]
# espeak-ng voice variants that sound like people (whispering, robotic and joke variants left out).
VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "adam",
    "anika",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "benjamin",
    "david",
    "edward",
    "iven",
    "john",
    "linda",
    "max",
    "norbert",
    "paul",
    "quincy",
    "robert",
    "steph",
    "travis",
    "victor",
]
FEMALE = {"f1", "f2", "f3", "f4", "f5", "anika", "Annie", "aunty", "belinda", "linda", "steph"}
CORPUS_FORMAT = 1
CHAPTER = "1"


@dataclass(frozen=True)
class Voice:
    speaker: str
    subset: str
    accent: str
    variant: str
    pitch: int  # espeak-ng -p, 0..99
    speed: int  # espeak-ng -s, words per minute
    amplitude: int  # espeak-ng -a, 0..200 (100 = default)
    gender: str

    @property
    def espeak_voice(self) -> str:
        return f"{self.accent}+{self.variant}"


def espeak_program() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(
            "espeak-ng is needed to make the synthetic corpus; install it "
            "(Debian/Ubuntu: apt-get install espeak-ng, macOS: brew install espeak-ng)"
        )
    return exe


def available_variants() -> list[str]:
    """The :data:`VARIANTS` this espeak-ng installation has (an unknown one silently falls back)."""
    out = subprocess.run([espeak_program(), "--version"], capture_output=True, text=True, timeout=30).stdout
    data_dir = Path(out.split("Data at:")[-1].strip()) if "Data at:" in out else None
    if data_dir is None or not (data_dir / "voices" / "!v").is_dir():
        return list(VARIANTS)
    have = {p.name for p in (data_dir / "voices" / "!v").iterdir()}
    found = [v for v in VARIANTS if v in have]
    if not found:
        raise RuntimeError(f"none of the expected espeak-ng voice variants is installed under {data_dir}")
    return found


def make_voices(n: int, seed: int, subsets: list[str]) -> list[Voice]:
    """``n`` distinct voices: variants and accents cycled in a seeded order, pitch and rate spread out."""
    rng = np.random.default_rng([seed, 7])
    variants = [str(v) for v in rng.permutation(available_variants())]
    accents = [str(a) for a in rng.permutation(ACCENTS)]
    pitches = rng.permutation(np.linspace(25, 75, n).round().astype(int)) if n > 1 else np.array([50])
    speeds = rng.permutation(np.linspace(135, 185, n).round().astype(int)) if n > 1 else np.array([160])
    amps = rng.integers(70, 111, size=n)
    voices = []
    for i in range(n):
        variant = variants[i % len(variants)]
        voices.append(
            Voice(
                speaker=str(9000 + i),
                subset=subsets[i],
                accent=accents[i % len(accents)],
                variant=variant,
                pitch=int(pitches[i]),
                speed=int(speeds[i]),
                amplitude=int(amps[i]),
                gender="female" if variant in FEMALE else "male",
            )
        )
    return voices


def synthesize(text: str, voice: Voice, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng speech for ``text`` as float32 at 24 kHz."""
    import librosa
    import soundfile as sf

    cmd = [
        espeak_program(),
        "-v",
        voice.espeak_voice,
        "-p",
        str(pitch),
        "-s",
        str(speed),
        "-a",
        str(voice.amplitude),
        "--stdout",
    ]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(
            f"espeak-ng failed for voice {voice.espeak_voice}: {proc.stderr.decode(errors='replace')}"
        )
    wave, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    return librosa.resample(wave, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)


def write_corpus_wav(path: Path, wave: np.ndarray) -> None:
    """24 kHz 16-bit mono, written atomically (a killed run leaves no half file under the name)."""
    import soundfile as sf

    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.clip(wave, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def open_corpus_folder(out: Path, settings: dict, overwrite: bool, extra: tuple[str, ...] = ()) -> Path:
    """Make ``out`` ready for a corpus made with ``settings``; return its ``speakers.json`` path.

    The same settings resume; other settings are an error unless ``overwrite``, which removes the old
    corpus's subsets (and the ``extra`` folders); a non-empty folder that is no corpus is never touched.
    """
    meta_path = out / "speakers.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text(encoding="utf-8")).get("settings")
        if old != settings:
            if not overwrite:
                raise ValueError(
                    f"{out} holds a synthetic corpus made with {old}; pass overwrite to replace it"
                )
            for name in ((old or {}).get("subset"), (old or {}).get("test_subset"), *extra):
                if name and (out / name).is_dir():
                    shutil.rmtree(out / name)
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and is not a synthetic corpus; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    return meta_path


def _settings(
    speakers: int, utterances: int, seed: int, subset: str, test_speakers: int, test_subset: str
) -> dict:
    return dict(
        format=CORPUS_FORMAT,
        speakers=speakers,
        utterances=utterances,
        seed=seed,
        subset=subset,
        test_speakers=test_speakers,
        test_subset=test_subset,
    )


def corpus_plan(
    speakers: int, utterances: int, seed: int, subset: str, test_speakers: int, test_subset: str
) -> tuple[list[Voice], list[tuple[Voice, str, str, str, int, int]]]:
    """The corpus's voices and every utterance as ``(voice, id, original, normalised, pitch, speed)``:
    each utterance varies its voice's pitch and rate a little, as one speaker's recordings do."""
    subsets = [subset] * (speakers - test_speakers) + [test_subset] * test_speakers
    voices = make_voices(speakers, seed, subsets)
    plan = []
    for i, voice in enumerate(voices):
        rng = np.random.default_rng([seed, i, 1])
        for j, (orig, norm) in enumerate(make_sentences(utterances, [seed, i])):
            pitch = int(np.clip(voice.pitch + rng.integers(-3, 4), 0, 99))
            speed = int(voice.speed + rng.integers(-8, 9))
            plan.append((voice, f"{voice.speaker}_{CHAPTER}_{j:06d}_000000", orig, norm, pitch, speed))
    return voices, plan


def make_corpus(
    out: str | os.PathLike,
    speakers: int = 24,
    utterances: int = 40,
    *,
    seed: int = 0,
    subset: str = "train-synth",
    test_speakers: int = 0,
    test_subset: str = "test-synth",
    jobs: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write (or complete) a synthetic LibriTTS-layout corpus at ``out``; return ``out``.

    The last ``test_speakers`` speakers go to ``test_subset`` (held-out speakers for evaluation).
    The same arguments always give the same texts, voices and audio (espeak-ng is deterministic).
    An existing corpus made with other settings is an error unless ``overwrite``.
    """
    from ..utils.progress import progress_bar as tqdm

    if speakers < 1 or utterances < 1:
        raise ValueError(f"need at least one speaker and one utterance, got {speakers} x {utterances}")
    if not 0 <= test_speakers < speakers:
        raise ValueError(f"test_speakers must be in [0, {speakers - 1}], got {test_speakers}")
    if subset == test_subset:
        raise ValueError("the training and test subsets need different names")
    out = Path(out)
    settings = _settings(speakers, utterances, seed, subset, test_speakers, test_subset)
    meta_path = open_corpus_folder(out, settings, overwrite)

    voices, plan = corpus_plan(speakers, utterances, seed, subset, test_speakers, test_subset)
    write_json(
        meta_path,
        {"settings": settings, "complete": False, "voices": [dataclasses.asdict(v) for v in voices]},
    )

    def folder(voice: Voice) -> Path:
        return out / voice.subset / voice.speaker / CHAPTER

    def work(entry) -> bool:
        voice, utt_id, orig, norm, pitch, speed = entry
        wav = folder(voice) / f"{utt_id}.wav"
        if wav.exists() and (folder(voice) / f"{utt_id}.normalized.txt").exists():
            return False
        write_corpus_wav(wav, synthesize(norm, voice, pitch, speed))
        write_text(folder(voice) / f"{utt_id}.original.txt", orig + "\n")
        write_text(folder(voice) / f"{utt_id}.normalized.txt", norm + "\n")
        return True

    jobs = jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        made = sum(
            tqdm(pool.map(work, plan), total=len(plan), desc="synthesising", unit="utt", disable=not progress)
        )
    for voice in voices:
        rows = [f"{uid}\t{o}\t{n}\n" for v, uid, o, n, _, _ in plan if v is voice]
        write_text(folder(voice) / f"{voice.speaker}_{CHAPTER}.trans.tsv", "".join(rows))
    write_json(
        meta_path, {"settings": settings, "complete": True, "voices": [dataclasses.asdict(v) for v in voices]}
    )
    log.info(
        "synthetic corpus at %s: %d speakers x %d utterances (%d newly written)",
        out,
        speakers,
        utterances,
        made,
    )
    return out
