"""Listen to the base model and adapted models side by side (Gradio).

    python demo/app.py --checkpoint Models/LibriTTS/epochs_2nd_00020.pth --config Models/LibriTTS/config.yml \
        --adapted runs/lora --adapted runs/lora-kfac --references my_voice/ [--port 7860]

Every system speaks the same text from the same reference recording with the same seed, so what you
hear is the difference between the models. The reference decides whose voice the *base* model imitates
(zero-shot); the adapted models should sound like their target speaker, and from a held-out speaker's
reference they show how much zero-shot ability is left. The base model alone (no ``--adapted``) works
too. Without ``--checkpoint`` the package's shipped base model is used where the installation has one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("tts_adapt.demo")

MAX_SYSTEMS = 6
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
FILELIST_SUFFIXES = (".txt", ".csv", ".list")
MAX_TEXT_CHARS = 2000
MAX_REFERENCE_SECONDS = 60.0
MAX_REFERENCE_BYTES = 20_000_000  # 20 MB
PER_SPEAKER = 3


def default_model() -> tuple[Path, Path] | None:
    """The package's shipped base model as ``(checkpoint, config)``, or None where there is none.

    ``tts_adapt.models.styletts2.default_model_paths()`` is the package's one place that knows whether
    (and where) a base model ships; an installation without it has no default.
    """
    from tts_adapt.models import styletts2

    finder = getattr(styletts2, "default_model_paths", None)
    found = finder() if finder is not None else None
    if not found:
        return None
    checkpoint, config = found
    return Path(checkpoint), Path(config)


def resolve_model(checkpoint: str | None, config: str | None) -> tuple[Path, Path]:
    """The checkpoint and config to serve: as given, the config beside the checkpoint, or the default."""
    if checkpoint is None:
        if config is not None:
            raise ValueError("--config was given without --checkpoint; give both")
        found = default_model()
        if found is None:
            raise ValueError(
                "no --checkpoint given and this installation ships no default base model: pass --checkpoint "
                "CKPT.pth --config config.yml (e.g. from 'tts-adapt download styletts2-libritts')"
            )
        return found
    if config is None:
        beside = Path(checkpoint).parent / "config.yml"
        if not beside.is_file():
            raise ValueError(f"--config is needed: no config.yml beside the checkpoint {checkpoint}")
        config = str(beside)
    return Path(checkpoint), Path(config)


def check_text(text: str | None) -> str:
    """The text to speak, or a ValueError saying what is wrong with it."""
    text = (text or "").strip()
    if not text:
        raise ValueError("type some text to speak")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(
            f"the text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are spoken in one request"
        )
    return text


def check_reference(path: str | os.PathLike) -> None:
    """A reference recording the demo accepts: readable audio of at most 60 s and 20 MB."""
    from tts_adapt.audio import SAMPLE_RATE, load_audio
    from tts_adapt.data.readers import audio_duration

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference recording not found: {path.name}")
    size = path.stat().st_size
    if size > MAX_REFERENCE_BYTES:
        raise ValueError(
            f"the reference recording {path.name} is {size / 1e6:.1f} MB; at most "
            f"{MAX_REFERENCE_BYTES / 1e6:.0f} MB is accepted"
        )
    seconds = audio_duration(path)
    if seconds is None:  # no header soundfile knows: decode it, or say it is not audio
        try:
            seconds = len(load_audio(path)) / SAMPLE_RATE
        except ValueError as e:
            raise ValueError(
                f"{path.name} is not a recording the demo can read: upload WAV, FLAC, OGG or MP3 audio "
                f"({str(e.__cause__ or e) or type(e.__cause__).__name__})"
            ) from e
    if seconds > MAX_REFERENCE_SECONDS:
        raise ValueError(
            f"the reference recording {path.name} lasts {seconds:.0f} s; at most "
            f"{MAX_REFERENCE_SECONDS:.0f} s is accepted (a few seconds of one speaker is enough)"
        )
    if seconds <= 0:
        raise ValueError(f"the reference recording {path.name} is empty")


def _speaker_of_file(path: Path) -> str:
    """The speaker of a lone recording: the nearest folder whose name starts the file name
    (LibriTTS ``19/198/19_198_000000.wav`` -> 19, VCTK ``p248/p248_001.wav`` -> p248), else its folder."""
    for folder in path.parents:
        if folder.name and path.stem.startswith(folder.name + "_"):
            return folder.name
    return path.parent.name or path.stem


def _recordings(item: Path) -> list[tuple[str, Path]]:
    """(speaker, recording) pairs in a file, a corpus folder, a plain folder or a file list."""
    if item.is_file() and item.suffix.lower() in AUDIO_SUFFIXES:
        return [(_speaker_of_file(item), item)]
    if item.is_dir() or item.suffix.lower() in FILELIST_SUFFIXES:
        from tts_adapt.data import load_corpus

        try:
            return [(u.speaker, Path(u.audio_path)) for u in load_corpus(item, durations=False)]
        except ValueError:
            if not item.is_dir():
                raise
        # recordings without transcripts: speakers from the folder structure
        files = sorted(f for f in item.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
        if not files:
            raise ValueError(f"no recordings (*.wav, *.flac, *.ogg, *.mp3) in {item}")
        return [(_speaker_of_file(f) if f.parent != item else item.resolve().name, f) for f in files]
    raise ValueError(f"references must be recordings, folders or file lists, got {item}")


def label_references(items: list[str], per_speaker: int = PER_SPEAKER) -> dict[str, Path]:
    """Known references by speaker label ("speaker p248", "speaker p248 (2)"), a few per speaker.

    ``NAME=PATH`` names the speaker of everything under PATH.
    """
    by_speaker: dict[str, list[Path]] = defaultdict(list)
    for item in items:
        name, path = None, Path(item)
        if not path.exists() and "=" in item:
            name, _, rest = item.partition("=")
            path = Path(rest)
        if not path.exists():
            raise FileNotFoundError(f"reference not found: {path}")
        for speaker, audio in _recordings(path):
            if not audio.is_file():
                raise FileNotFoundError(f"reference audio not found: {audio}")
            key = name.strip() if name else f"speaker {speaker}"
            if audio not in by_speaker[key]:
                by_speaker[key].append(audio)
    labels = {}
    for key in sorted(by_speaker):
        files = by_speaker[key][:per_speaker]
        for k, audio in enumerate(files, 1):
            labels[key if len(files) == 1 else f"{key} ({k})"] = audio
    return labels


def shipped_references() -> dict[str, Path]:
    """The reference recordings shipped with the base model, by label ("annie (en-gb, female)"): the
    known references when none are given, so the page speaks before a user uploads anything."""
    from tts_adapt.models.styletts2.shipped_voices import shipped_voices

    return {v.label: v.path for v in shipped_voices().values()}


@dataclass
class Voices:
    """Loaded systems by display name (models are loaded once, at start-up)."""

    models: dict[str, object] = field(default_factory=dict)
    references: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike,
        config: str | os.PathLike,
        adapted: list[str],
        references: list[str],
        device: str = "cpu",
        per_speaker: int = PER_SPEAKER,
    ) -> Voices:
        from tts_adapt.models.styletts2 import INFERENCE_MODULES, load_official
        from tts_adapt.train import load_adapted_model, read_manifest

        if 1 + len(adapted) > MAX_SYSTEMS:
            raise ValueError(f"at most {MAX_SYSTEMS} systems fit on the page, got {1 + len(adapted)}")
        voices = cls()
        voices.models["base"] = load_official(checkpoint, config, modules=INFERENCE_MODULES).to(device)
        for folder in adapted:
            manifest = read_manifest(folder)
            name = f"{Path(folder).name} ({manifest['method']})"
            voices.models[name] = load_adapted_model(folder, checkpoint=checkpoint).to(device)
        voices.references = label_references(references, per_speaker) if references else shipped_references()
        return voices

    def speak(
        self,
        text: str,
        reference: str | Path | np.ndarray,
        alpha: float = 0.3,
        beta: float = 0.7,
        steps: int = 5,
        scale: float = 1.0,
        seed: int = 0,
    ) -> dict[str, tuple[int, np.ndarray]]:
        """Every system's (sample rate, float waveform) for ``text`` in the reference's voice."""
        text = check_text(text)
        if isinstance(reference, (str, os.PathLike)):
            check_reference(reference)
        out = {}
        for name, model in self.models.items():
            wave, sr = model.synthesize(
                text,
                reference=reference,
                alpha=alpha,
                beta=beta,
                diffusion_steps=int(steps),
                embedding_scale=scale,
                seed=int(seed),
            )
            out[name] = (sr, wave)
        return out


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """16-bit samples, clipped rather than peak-normalised, so the systems keep their relative loudness."""
    return (np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype(np.int16)


def user_error(message: str):
    """A Gradio error shown on the page until closed (the message is rendered as HTML: escape it)."""
    import html

    import gradio as gr

    try:
        return gr.Error(html.escape(message), duration=None, print_exception=False)
    except TypeError:  # Gradio before print_exception
        return gr.Error(html.escape(message), duration=None)


def build_app(voices: Voices):
    import gradio as gr

    names = list(voices.models)

    def run(text, uploaded, chosen, alpha, beta, steps, scale, seed):
        reference = uploaded or (voices.references.get(chosen) if chosen else None)
        try:
            if reference is None:
                raise ValueError("upload a reference recording or pick a known reference")
            result = voices.speak(text, reference, alpha, beta, steps, scale, seed)
        except (ValueError, FileNotFoundError) as e:
            raise user_error(str(e)) from e
        except Exception as e:  # the page says what went wrong; the server log has the traceback
            log.exception("synthesis failed")
            raise user_error(f"synthesis failed: {type(e).__name__}: {e}") from e
        return {box: (result[n][0], to_pcm16(result[n][1])) for n, box in zip(names, outputs)}

    def check_upload(path):
        """Say what is wrong with an upload as soon as it arrives, not only at the next Speak."""
        if path:
            try:
                check_reference(path)
            except (ValueError, FileNotFoundError) as e:
                raise user_error(str(e)) from e

    with gr.Blocks(title="tts-adapt: base vs adapted voices") as app:
        gr.Markdown(
            "# Base vs adapted voices\nEvery system reads the same text from the same reference with the "
            "same seed. From the target speaker's reference the adapted models should sound closer to "
            "the target; from a held-out speaker's reference, a model that kept its zero-shot ability "
            "still imitates that speaker."
        )
        with gr.Row():
            with gr.Column(scale=2):
                text = gr.Textbox(
                    label=f"Text (at most {MAX_TEXT_CHARS:,} characters)",
                    value="The quick brown fox jumps over the lazy dog.",
                    lines=2,
                    elem_id="text",
                )
                with gr.Row():
                    uploaded = gr.Audio(
                        label=f"Reference recording (at most {MAX_REFERENCE_SECONDS:.0f} s)",
                        type="filepath",
                        sources=["upload"],
                        elem_id="reference-upload",
                    )
                    chosen = gr.Dropdown(
                        label="…or a known reference",
                        choices=list(voices.references),
                        value=next(iter(voices.references), None),
                        elem_id="known-reference",
                    )
            with gr.Column(scale=1):
                alpha = gr.Slider(0, 1, value=0.3, step=0.05, label="alpha (acoustic style from diffusion)")
                beta = gr.Slider(0, 1, value=0.7, step=0.05, label="beta (prosody from diffusion)")
                steps = gr.Slider(2, 20, value=5, step=1, label="diffusion steps")
                scale = gr.Slider(1, 3, value=1, step=0.1, label="guidance scale")
                seed = gr.Number(value=0, precision=0, label="seed")
        button = gr.Button("Speak", variant="primary", elem_id="speak")
        outputs = [
            gr.Audio(
                label=n,
                type="numpy",
                interactive=False,
                elem_id=f"output-{i}",
                waveform_options=gr.WaveformOptions(show_recording_waveform=False),  # the browser's player
            )
            for i, n in enumerate(names)
        ]
        uploaded.upload(check_upload, uploaded, None, api_name=False)
        button.click(run, [text, uploaded, chosen, alpha, beta, steps, scale, seed], outputs, api_name="run")
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--checkpoint", help="the pre-trained checkpoint (default: the shipped base model)")
    ap.add_argument("--config", help="its config.yml (default: the config.yml beside the checkpoint)")
    ap.add_argument("--adapted", action="append", default=[], help="an adapted folder (repeatable)")
    ap.add_argument(
        "--references",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="known references: recordings, corpus folders or file lists, labelled by speaker (repeatable); "
        "without it, the voices shipped with the base model",
    )
    ap.add_argument("--per-speaker", type=int, default=PER_SPEAKER, help="known references per speaker")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=7860, help="port to listen on")
    ap.add_argument("--share", action="store_true", help="public Gradio link (needs internet)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        checkpoint, config = resolve_model(args.checkpoint, args.config)
        voices = Voices.load(checkpoint, config, args.adapted, args.references, args.device, args.per_speaker)
    except (ValueError, FileNotFoundError) as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 2
    log.info("serving %s with %d known references", ", ".join(voices.models), len(voices.references))
    build_app(voices).launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
