"""Levels of the clips ``tts-adapt synth`` writes: each voice's raw output against the finished one.

For every voice of the shipped base model and a set of Kokoro voices, one sentence is synthesised once;
the raw output (what synth wrote before it levelled clips: scaled only where it would clip) and the
clip ``tts_adapt.audio_out.finish_for_listening`` makes of it are measured the same way:

* peak (dBFS) and speech level (dBFS, RMS of the frames within 40 dB of the loudest, as audio_out);
* the last 10 ms: RMS in dB relative to the speech level (speech energy there means a cut sound);
* the spread of speech levels between voices (max - min, dB), per model.

    python benchmarks/synth_levels.py                      # both models, the README sentence
    python benchmarks/synth_levels.py --models tts-adapt-base --text "Hello there."
"""

from __future__ import annotations

import argparse

import numpy as np

KOKORO_VOICES = ("af_heart", "af_bella", "am_adam", "am_michael", "bf_emma", "bm_george")


def tail_db(wave: np.ndarray, sr: int, level_rms: float) -> float:
    last = np.asarray(wave[-int(0.01 * sr) :], dtype=np.float64)
    rms = float(np.sqrt(np.mean(last**2))) if len(last) else 0.0
    return 20 * np.log10(max(rms, 1e-10) / max(level_rms, 1e-10))


def measure(wave: np.ndarray, sr: int) -> dict[str, float]:
    from tts_adapt.audio_out import dbfs, speech_rms

    level = speech_rms(wave, sr)
    return {
        "peak": dbfs(float(np.abs(wave).max())),
        "level": dbfs(level),
        "tail10ms": tail_db(wave, sr, level),
        "seconds": len(wave) / sr,
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    from tts_adapt.audio_out import finish_for_listening, within_full_scale
    from tts_adapt.models.registry import resolve_model
    from tts_adapt.models.styletts2 import INFERENCE_MODULES, load_official
    from tts_adapt.models.styletts2.shipped_voices import resolve_reference, shipped_voices

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tts-adapt-base,kokoro", help="comma-separated model names")
    ap.add_argument("--text", default="Hello there.", help="the sentence every voice speaks")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(
        f"{'model':15s} {'voice':10s} | {'raw peak':>8s} {'level':>7s} {'last10ms':>8s} | "
        f"{'out peak':>8s} {'level':>7s} {'last10ms':>8s} {'seconds':>7s}"
    )
    for name in args.models.split(","):
        checkpoint, config = resolve_model(name, None, None)
        model = load_official(checkpoint, config, modules=INFERENCE_MODULES).eval()
        if getattr(model, "uses_voice_packs", False):
            voices = {v: v for v in KOKORO_VOICES}
        else:
            voices = {v: str(resolve_reference(None, v)) for v in shipped_voices()}
        levels = {"raw": [], "out": []}
        for voice, reference in voices.items():
            wave, sr = model.synthesize(args.text, reference=reference, seed=0)
            raw, _ = within_full_scale(np.asarray(wave, dtype=np.float32).reshape(-1))
            out, _ = finish_for_listening(raw, sr)
            before, after = measure(raw, sr), measure(out, sr)
            levels["raw"].append(before["level"])
            levels["out"].append(after["level"])
            row = [before["peak"], before["level"], before["tail10ms"], after["peak"], after["level"]]
            print(
                f"{name:15s} {voice:10s} | {row[0]:8.1f} {row[1]:7.1f} {row[2]:8.1f} | "
                f"{row[3]:8.1f} {row[4]:7.1f} {after['tail10ms']:8.1f} {after['seconds']:7.2f}"
            )
        print(
            f"{name:15s} spread of speech levels between voices: raw {np.ptp(levels['raw']):.1f} dB, "
            f"written {np.ptp(levels['out']):.1f} dB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
