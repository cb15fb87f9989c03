"""Festival voices from Debian's festvox packages: the CMU ARCTIC slt HTS voice and two diphone voices.

Each sentence is one ``festival --pipe`` run of a short Scheme program (select the voice, synthesise
an utterance of the text, save it as RIFF wave). Festival is deterministic. It exits 0 even when the
program fails, so success is judged by the wave it wrote and by its error output.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .base import Engine, EngineNotInstalled, EngineVoice, Speech, VoiceLicense, find_program

INSTALL = "apt-get install festival (Debian/Ubuntu)"

EDINBURGH_CMU_TERMS = (
    "free to use, modify and redistribute, commercially too, provided the copyright notice is kept, "
    "modifications are marked, the authors' names are kept and not used for endorsement"
)


def _license(package: str, name: str) -> VoiceLicense:
    return VoiceLicense(
        name=name,
        summary=EDINBURGH_CMU_TERMS,
        source=f"Debian package {package}: /usr/share/doc/{package}/copyright",
    )


# voice name -> (Debian package, voice)
VOICES = {
    "cmu_us_slt_arctic_hts": (
        "festvox-us-slt-hts",
        EngineVoice(
            "cmu_us_slt_arctic_hts",
            "festival-slt",
            "female",
            "US English",
            32000,
            _license("festvox-us-slt-hts", "EST-2003 (CMU, BSD-style); HTS files BSD-3-Clause"),
            "CMU ARCTIC speaker slt, HTS statistical parametric voice",
        ),
    ),
    "kal_diphone": (
        "festvox-kallpc16k",
        EngineVoice(
            "kal_diphone",
            "festival-kal",
            "male",
            "US English",
            16000,
            _license("festvox-kallpc16k", "Festvox free licence (BSD-style; Black and Lenzo 1998)"),
            "kal diphone voice (residual-excited LPC, 16 kHz)",
        ),
    ),
    "ked_diphone": (
        "festvox-kdlpc16k",
        EngineVoice(
            "ked_diphone",
            "festival-ked",
            "male",
            "US English",
            16000,
            _license("festvox-kdlpc16k", "Festvox free licence (BSD-style; CSTR Edinburgh 1997)"),
            "ked diphone voice (residual-excited LPC, 16 kHz)",
        ),
    ),
}


def scheme_string(text: str) -> str:
    """``text`` as a Scheme string literal (backslash and double quote escaped, one line)."""
    flat = " ".join(text.split())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalEngine(Engine):
    name = "festival"
    deterministic = True

    def __init__(self, path: str | None = None) -> None:
        self.path = path  # where to look for the program; None: $PATH
        self._installed: list[str] | None = None

    def voices(self) -> list[EngineVoice]:
        return [voice for _, voice in VOICES.values()]

    def program(self) -> str:
        return find_program("festival", INSTALL, self.path)

    def _run(self, program: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.program(), "--pipe"], input=program.encode("utf-8"), capture_output=True, timeout=300
        )

    def installed_voices(self) -> list[str]:
        """The voices festival itself finds (``voice.list``)."""
        if self._installed is None:
            out = self._run("(print (voice.list))\n").stdout.decode(errors="replace")
            match = re.search(r"\(([^()]*)\)", out)
            self._installed = match.group(1).split() if match else []
        return self._installed

    def check(self, voices: Sequence[EngineVoice]) -> None:
        self.program()
        have = set(self.installed_voices())
        missing = [v.name for v in voices if v.name not in have]
        if missing:
            packages = " ".join(VOICES[n][0] for n in missing)
            raise EngineNotInstalled(
                f"festival voice {', '.join(missing)} is not installed: "
                f"apt-get install {packages} (Debian/Ubuntu)"
            )

    def synthesize(self, text: str, voice: EngineVoice, seed: Sequence[int]) -> Speech:
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            wav = Path(tmp) / "out.wav"
            program = (
                f"(voice_{voice.name})\n"
                f"(set! utt1 (Utterance Text {scheme_string(text)}))\n"
                "(utt.synth utt1)\n"
                f"(utt.save.wave utt1 {scheme_string(str(wav))} 'riff)\n"
            )
            proc = self._run(program)
            errors = proc.stderr.decode(errors="replace").strip()
            if proc.returncode != 0 or "ERROR" in errors or not wav.exists() or wav.stat().st_size <= 44:
                raise RuntimeError(f"festival failed for voice {voice.name}: {errors or 'no audio written'}")
            wave, sr = sf.read(str(wav), dtype="float32")
        return Speech(wave, sr)

    def version(self) -> dict:
        out = subprocess.run([self.program(), "--version"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"(\d+\.\d+\.\d+)", out)
        return {"festival": match.group(1) if match else "unknown"}

    def license_files(self, voice: EngineVoice) -> list[Path]:
        notice = Path("/usr/share/doc") / VOICES[voice.name][0] / "copyright"
        return [notice] if notice.is_file() else []
