"""Render the ground-truth sets: the same 16 texts by our base model, espeak-ng, Kokoro and Piper.

``python -m tts_adapt.evaluation.voice_sets --out gt`` writes, for each shipped voice (annie, victor,
david, aunty) and each sentence of ``assets/ground_truth_sentences.txt`` (16 everyday sentences):

* ``gt/shipped/<voice>/NN.wav`` + ``.txt``: the shipped base model speaking in that voice (its reference
  recording, seed NN, default synthesis settings), as ``tts-adapt synth --voice <voice>`` does;
* ``gt/espeak/<voice>/NN.wav`` + ``.txt``: espeak-ng with the voice's own settings from
  ``voices/voices.json`` (accent, variant, pitch, rate, amplitude): the kind of audio the model learnt;
* ``gt/shipped.txt`` and ``gt/espeak.txt``: file lists (``path|text|voice``) for ``tts-adapt ground-truth``.

``--engines kokoro,piper`` adds the sets of real-speech models, in the same shape:

* ``gt/kokoro/<voice>/NN.wav``: Kokoro-82M's voices af_heart, am_adam, bf_emma and bm_george (one per
  accent and sex), seed NN, as ``tts-adapt synth --model kokoro --voice <voice>`` does;
* ``gt/piper/piper-joe/NN.wav``: Piper ``en_US-joe-medium`` (one real speaker), its noise seeded with NN,
  at its native 22.05 kHz.

Other engines' sets are folders of the same shape (one folder of ``*.wav`` + ``*.txt`` per voice), made
with their own commands; ``ground-truth`` takes any of them. Existing clips are kept (reruns resume).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

SENTENCES = Path(__file__).resolve().parents[1] / "assets" / "ground_truth_sentences.txt"
ENGINES = ("shipped", "espeak", "kokoro", "piper")
DEFAULT_ENGINES = ("shipped", "espeak")
KOKORO_VOICES = ("af_heart", "am_adam", "bf_emma", "bm_george")  # US/British, female/male
PIPER_VOICES = ("en_US-joe-medium",)


def read_sentences(path: str | Path = SENTENCES) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sentence file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in lines if t and not t.startswith("#")]
    if not texts:
        raise ValueError(f"{path}: no sentences (one a line; # starts a comment)")
    return texts


def _espeak_voice(entry: dict):
    from ..data.synthetic import Voice

    missing = [k for k in ("accent", "variant", "pitch", "speed", "amplitude") if k not in entry]
    if missing:
        raise ValueError(f"voices.json: voice {entry.get('name')!r} lacks {', '.join(missing)}")
    return Voice(
        speaker=entry["name"],
        subset="",
        accent=entry["accent"],
        variant=entry["variant"],
        pitch=int(entry["pitch"]),
        speed=int(entry["speed"]),
        amplitude=int(entry["amplitude"]),
        gender=entry.get("gender", ""),
    )


def _renderers(engine: str, device: str) -> dict[str, Callable[[str, int], tuple[np.ndarray, int]]]:
    """Per voice folder name: ``render(text, seed) -> (wave, sample_rate)``."""
    if engine == "kokoro":
        from .systems import make_system

        system = make_system("kokoro", name="kokoro", device=device)
        return {v: (lambda text, seed, v=v: system.synthesize(text, v, seed)) for v in KOKORO_VOICES}
    if engine == "piper":
        from ..data.engines import get_engine

        piper = get_engine("piper")
        chosen = [v for v in piper.voices() if v.name in PIPER_VOICES]
        piper.check(chosen)

        def speak(text: str, seed: int, voice) -> tuple[np.ndarray, int]:
            speech = piper.synthesize(text, voice, [seed])
            return speech.wave, speech.sample_rate

        return {v.speaker: (lambda text, seed, v=v: speak(text, seed, v)) for v in chosen}
    from ..models.styletts2.shipped_voices import VOICES_DIR, shipped_voices

    voices = shipped_voices()
    if not voices:
        raise FileNotFoundError(f"no shipped voices found in {VOICES_DIR}")
    if engine == "shipped":
        from .systems import make_system

        system = make_system("styletts2:default", name="shipped", device=device)
        return {
            name: (lambda text, seed, ref=v.path: system.synthesize(text, ref, seed))
            for name, v in voices.items()
        }
    if engine == "espeak":
        from ..data.synthetic import SAMPLE_RATE, synthesize

        entries = {e["name"]: e for e in json.loads((VOICES_DIR / "voices.json").read_text())["voices"]}
        out = {}
        for name in voices:
            voice = _espeak_voice(entries[name])
            out[name] = lambda text, seed, voice=voice: (
                synthesize(text, voice, voice.pitch, voice.speed),
                SAMPLE_RATE,
            )
        return out
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def render(
    out: str | Path, engines=DEFAULT_ENGINES, texts: list[str] | None = None, device: str = "cpu"
) -> list[Path]:
    """Write the sets (see module docstring); returns the file lists written."""
    from ..audio_out import within_full_scale
    from ..utils.io import write_text
    from ..utils.progress import progress_bar as tqdm
    from .audio_io import write_wave

    out = Path(out)
    texts = texts if texts is not None else read_sentences()
    lists = []
    for engine in engines:
        renderers = _renderers(engine, device)
        rows = []
        todo = [(v, i) for v in renderers for i in range(len(texts))]
        for voice, i in tqdm(todo, desc=f"rendering {engine}", unit="clip"):
            wav = out / engine / voice / f"{i:02d}.wav"
            if not wav.exists():
                wave, sr = renderers[voice](texts[i], i)
                wave, _ = within_full_scale(np.asarray(wave, dtype=np.float32).reshape(-1))
                write_wave(wav, wave, sr)
            write_text(wav.with_suffix(".txt"), texts[i] + "\n")
            rows.append(f"{engine}/{voice}/{i:02d}.wav|{texts[i]}|{voice}\n")
        lists.append(out / f"{engine}.txt")
        write_text(lists[-1], "".join(rows))
    return lists


def main(argv: list[str] | None = None) -> int:
    from ..utils.help import HelpFormatter

    ap = argparse.ArgumentParser(
        prog="python -m tts_adapt.evaluation.voice_sets", description=__doc__, formatter_class=HelpFormatter
    )
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)} (default: {','.join(DEFAULT_ENGINES)})",
    )
    ap.add_argument(
        "--texts", type=Path, default=SENTENCES, help="sentences, one a line (default: the 16 shipped)"
    )
    ap.add_argument("--device", default="cpu", help="torch device for the base model and Kokoro")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for path in render(args.out, engines, read_sentences(args.texts), args.device):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
