"""CMU Flite's built-in voices: CMU ARCTIC speakers (clustergen/clunits) and the kal diphone voice.

Flite is deterministic: the same text and voice give the same samples. ``awb_time`` (a limited
domain voice that only speaks clock times) is left out.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .base import Engine, EngineNotInstalled, EngineVoice, Speech, VoiceLicense, find_program

INSTALL = "apt-get install flite (Debian/Ubuntu)"

CMU_LICENSE = VoiceLicense(
    name="CMU-Flite (BSD-style)",
    summary=(
        "free to use, modify and redistribute, commercially too, provided the copyright notice is kept, "
        "modifications are marked, the authors' names are kept and not used for endorsement"
    ),
    source="Debian package flite: /usr/share/doc/flite/copyright (Carnegie Mellon University)",
)


def _voice(name: str, gender: str, accent: str, rate: int, description: str) -> EngineVoice:
    return EngineVoice(name, f"flite-{name}", gender, accent, rate, CMU_LICENSE, description)


VOICES = [
    _voice("awb", "male", "Scottish English", 16000, "CMU ARCTIC speaker awb, clustergen"),
    _voice("slt", "female", "US English", 16000, "CMU ARCTIC speaker slt, clustergen"),
    _voice("rms", "male", "US English", 16000, "CMU ARCTIC speaker rms, clustergen"),
    _voice("kal16", "male", "US English", 16000, "kal diphone voice, 16 kHz"),
    _voice("kal", "male", "US English", 8000, "kal diphone voice, 8 kHz (telephone band)"),
]


class FliteEngine(Engine):
    name = "flite"
    deterministic = True

    def __init__(self, path: str | None = None) -> None:
        self.path = path  # where to look for the program; None: $PATH

    def voices(self) -> list[EngineVoice]:
        return list(VOICES)

    def program(self) -> str:
        return find_program("flite", INSTALL, self.path)

    def installed_voices(self) -> list[str]:
        """What ``flite -lv`` lists (``Voices available: kal awb ...``)."""
        out = subprocess.run([self.program(), "-lv"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"Voices available:(.*)", out)
        return match.group(1).split() if match else []

    def check(self, voices: Sequence[EngineVoice]) -> None:
        have = set(self.installed_voices())
        missing = [v.name for v in voices if v.name not in have]
        if missing:
            raise EngineNotInstalled(
                f"flite has no voice {', '.join(missing)} built in (it lists {', '.join(sorted(have))}): "
                f"{INSTALL}"
            )

    def synthesize(self, text: str, voice: EngineVoice, seed: Sequence[int]) -> Speech:
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
            wav = Path(tmp) / "out.wav"
            proc = subprocess.run(
                [self.program(), "-voice", voice.name, "-t", text, "-o", str(wav)],
                capture_output=True,
                timeout=120,
            )
            if proc.returncode != 0 or not wav.exists() or wav.stat().st_size <= 44:
                raise RuntimeError(
                    f"flite failed for voice {voice.name}: {proc.stderr.decode(errors='replace').strip()}"
                )
            wave, sr = sf.read(str(wav), dtype="float32")
        return Speech(wave, sr)

    def version(self) -> dict:
        out = subprocess.run([self.program(), "--version"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"version:\s*(\S+)", out)
        return {"flite": match.group(1) if match else "unknown"}

    def license_files(self, voice: EngineVoice) -> list[Path]:
        notice = Path("/usr/share/doc/flite/copyright")
        return [notice] if notice.is_file() else []
