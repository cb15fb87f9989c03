"""Listen to the base model and adapted models side by side (Gradio).

    python demo/app.py                                   # Kokoro-82M and its 28 English voices
    python demo/app.py --adapted runs/joe                # ... beside a Kokoro adapted with tts-adapt adapt
    python demo/app.py --checkpoint Models/LibriTTS/epochs_2nd_00020.pth --config Models/LibriTTS/config.yml \
        --adapted runs/lora --adapted runs/lora-kfac --references my_voice/ [--port 7860]

Every system speaks the same text in the same voice with the same seed, so what you hear is the
difference between the models. For Kokoro the voice is one of its voice packs (or a blend of them): an
adapted model should keep the stock voices it was not adapted to. For a StyleTTS 2 with style encoders
the voice is a reference recording, whose speaker the *base* model imitates (zero-shot); the adapted
models should sound like their target speaker, and from a held-out speaker's reference they show how
much zero-shot ability is left. Without ``--model``/``--checkpoint`` the default model is used
(Kokoro-82M where its weights are installed, else our small shipped model).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tts_adapt.audio_out import to_pcm16

log = logging.getLogger("tts_adapt.demo")

MAX_SYSTEMS = 6
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
FILELIST_SUFFIXES = (".txt", ".csv", ".list")
MAX_TEXT_CHARS = 2000
MAX_REFERENCE_SECONDS = 60.0
MAX_REFERENCE_BYTES = 20_000_000  # 20 MB
PER_SPEAKER = 3


def default_workdir() -> Path:
    """Where the "Your voice" tab keeps jobs and uploads: the user cache, one folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tts-adapt" / "own-voice"


def resolve_model(checkpoint: str | None, config: str | None, model: str | None = None) -> tuple[Path, Path]:
    """The checkpoint and config to serve: as given, the config beside the checkpoint, a named model, or
    the default model (:mod:`tts_adapt.models.registry`)."""
    from tts_adapt.models.registry import resolve_model as resolve

    if checkpoint is not None and config is None:
        beside = Path(checkpoint).parent / "config.yml"
        if not beside.is_file():
            raise ValueError(f"--config is needed: no config.yml beside the checkpoint {checkpoint}")
        config = str(beside)
    found_checkpoint, found_config = resolve(model, checkpoint, config)
    return Path(found_checkpoint), Path(found_config)


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


def pack_voices(model) -> dict[str, str]:
    """A voice-pack model's voices by label ("af_heart (US English, female)") -> voice name."""
    from tts_adapt.models.styletts2.inference import model_voice_packs

    accents = {"a": "US English", "b": "British English"}
    genders = {"f": "female", "m": "male"}
    out = {}
    for name in sorted(model_voice_packs(model)):
        if len(name) > 3 and name[2] == "_" and name[0] in accents and name[1] in genders:
            out[f"{name} ({accents[name[0]]}, {genders[name[1]]})"] = name
        else:
            out[name] = name
    return out


@dataclass
class Voices:
    """Loaded systems by display name (models are loaded once, at start-up); ``references`` maps the
    labels offered on the page to recordings, or to voice names for a voice-pack model."""

    models: dict[str, object] = field(default_factory=dict)
    references: dict[str, Path | str] = field(default_factory=dict)
    voice_packs: bool = False
    # a voice an adapted folder learned -> the stock voice it started from, which the systems that do
    # not know the new voice (the base, other runs) speak instead: "before" beside "after"
    start_voices: dict[str, str] = field(default_factory=dict)

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
        learned: dict[str, str] = {}  # label -> learned voice
        for folder in adapted:
            manifest = read_manifest(folder)
            name = f"{Path(folder).name} ({manifest['method']})"
            voices.models[name] = model = load_adapted_model(folder, checkpoint=checkpoint).to(device)
            new_voice = (getattr(model, "config", None) or {}).get("default_voice")
            start = (manifest.get("train_config") or {}).get("voice_init")
            if new_voice and start and new_voice not in voices.start_voices:
                voices.start_voices[new_voice] = start
                learned[f"{new_voice} (new voice, learned by {Path(folder).name}; base: {start})"] = new_voice
        voices.voice_packs = bool(getattr(voices.models["base"], "uses_voice_packs", False))
        if voices.voice_packs:
            if references:
                raise ValueError(
                    "this model speaks with voice packs, not reference recordings: drop --references"
                )
            voices.references = {**learned, **pack_voices(voices.models["base"])}
        else:
            voices.references = (
                label_references(references, per_speaker) if references else shipped_references()
            )
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
        speed: float = 1.0,
    ) -> dict[str, tuple[int, np.ndarray]]:
        """Every system's (sample rate, float waveform) for ``text`` in the reference's voice (a voice
        name or blend for a voice-pack model)."""
        text = check_text(text)
        if isinstance(reference, (str, os.PathLike)) and not self.voice_packs:
            check_reference(reference)
        out = {}
        for name, model in self.models.items():
            voice = reference
            if self.voice_packs and isinstance(reference, str) and reference in self.start_voices:
                from tts_adapt.models.styletts2.inference import model_voice_packs

                if reference not in model_voice_packs(model):  # the base: the voice it started from
                    voice = self.start_voices[reference]
            wave, sr = model.synthesize(
                text,
                reference=voice,
                alpha=alpha,
                beta=beta,
                diffusion_steps=int(steps),
                embedding_scale=scale,
                seed=int(seed),
                speed=float(speed),
            )
            out[name] = (sr, wave)
        return out


def user_error(message: str):
    """A Gradio error shown on the page until closed (the message is rendered as HTML: escape it)."""
    import html

    import gradio as gr

    try:
        return gr.Error(html.escape(message), duration=None, print_exception=False)
    except TypeError:  # Gradio before print_exception
        return gr.Error(html.escape(message), duration=None)


def title(voices: Voices) -> tuple[str, str]:
    """The page's heading and what it explains, for what is loaded."""
    adapted = len(voices.models) > 1
    if voices.voice_packs:
        head = "Base vs adapted voices" if adapted else f"{model_name(voices.models['base'])}'s voices"
        text = (
            "Every system reads the same text in the same voice with the same seed. An adapted model "
            "should speak its new voice and keep the stock voices it was not adapted to."
            if adapted
            else "Pick one of the model's voices, or blend several (af_heart:0.6,bf_emma:0.4)."
        )
        return head, text
    if adapted:
        return "Base vs adapted voices", (
            "Every system reads the same text from the same reference with the same seed. From the target "
            "speaker's reference the adapted models should sound closer to the target; from a held-out "
            "speaker's reference, a model that kept its zero-shot ability still imitates that speaker."
        )
    return "The base model's voice from a reference", (
        "The model imitates the speaker of the reference recording (zero-shot)."
    )


def model_name(model) -> str:
    """The name a model's config gives it (``name: Kokoro-82M``), else "the base model"."""
    config = getattr(model, "config", None) or {}
    return str(config.get("name") or "the base model")


def output_label(voices: Voices, name: str) -> str:
    if name == "base" and model_name(voices.models[name]) != "the base model":
        return f"base: {model_name(voices.models[name])}"
    return name


def build_app(voices: Voices, shop=None):
    """The page: the systems side by side; with ``shop`` (a voice-pack base) also the "Your voice" tab."""
    import gradio as gr

    names = list(voices.models)

    def speak(text, reference, alpha, beta, steps, scale, seed, speed):
        try:
            if reference is None:
                raise ValueError("upload a reference recording or pick a known reference")
            result = voices.speak(text, reference, alpha, beta, steps, scale, seed, speed)
        except (ValueError, FileNotFoundError) as e:
            raise user_error(str(e)) from e
        except Exception as e:  # the page says what went wrong; the server log has the traceback
            log.exception("synthesis failed")
            raise user_error(f"synthesis failed: {type(e).__name__}: {e}") from e
        return {box: (result[n][0], to_pcm16(result[n][1])) for n, box in zip(names, outputs)}

    def run_recording(text, uploaded, chosen, alpha, beta, steps, scale, seed):
        reference = uploaded or (voices.references.get(chosen) if chosen else None)
        return speak(text, reference, alpha, beta, steps, scale, seed, 1.0)

    def run_pack(text, chosen, blend, speed, seed):
        voice = (blend or "").strip() or (voices.references.get(chosen) if chosen else None)
        if voice is None:
            raise user_error("pick a voice")
        return speak(text, voice, 0.3, 0.7, 5, 1.0, seed, speed)

    def check_upload(path):
        """Say what is wrong with an upload as soon as it arrives, not only at the next Speak."""
        if path:
            try:
                check_reference(path)
            except (ValueError, FileNotFoundError) as e:
                raise user_error(str(e)) from e

    head, explanation = title(voices)
    with gr.Blocks(title=f"tts-adapt: {head.lower()}") as app:
        gr.Markdown(f"# {head}\n{explanation}")
        if shop is not None:
            from tts_adapt.own_voice.tab import browser_key, build_tab

            key = browser_key(shop)
        with gr.Tab("Listen", id="listen") if shop is not None else contextlib.nullcontext():
            with gr.Row():
                with gr.Column(scale=2):
                    text = gr.Textbox(
                        label=f"Text (at most {MAX_TEXT_CHARS:,} characters)",
                        value="The quick brown fox jumps over the lazy dog.",
                        lines=2,
                        elem_id="text",
                    )
                    with gr.Row():
                        if voices.voice_packs:
                            chosen = gr.Dropdown(
                                label=f"Voice ({len(voices.references)})",
                                choices=list(voices.references),
                                value=next(iter(voices.references), None),
                                elem_id="voice",
                            )
                            blend = gr.Textbox(
                                label="…or a blend of voices (name:weight, ...)",
                                placeholder="af_heart:0.6,bf_emma:0.4",
                                elem_id="blend",
                            )
                        else:
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
                    if voices.voice_packs:
                        speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="speed")
                    else:
                        alpha = gr.Slider(
                            0, 1, value=0.3, step=0.05, label="alpha (timbre sampled by diffusion)"
                        )
                        beta = gr.Slider(
                            0, 1, value=0.7, step=0.05, label="beta (prosody sampled by diffusion)"
                        )
                        steps = gr.Slider(2, 20, value=5, step=1, label="diffusion steps")
                        scale = gr.Slider(1, 3, value=1, step=0.1, label="guidance scale")
                    seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Speak", variant="primary", elem_id="speak")
            outputs = [
                gr.Audio(
                    label=output_label(voices, n),
                    type="numpy",
                    interactive=False,
                    elem_id=f"output-{i}",
                    # the browser's own player
                    waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                )
                for i, n in enumerate(names)
            ]
            if voices.voice_packs:
                button.click(run_pack, [text, chosen, blend, speed, seed], outputs, api_name="run")
            else:
                uploaded.upload(check_upload, uploaded, None, api_name=False)
                inputs = [text, uploaded, chosen, alpha, beta, steps, scale, seed]
                button.click(run_recording, inputs, outputs, api_name="run")
        if shop is not None:
            with gr.Tab("Your voice", id="own-voice"):
                load_fn, load_in, load_out = build_tab(shop, user_error, key)
            app.load(load_fn, load_in, load_out)
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument(
        "--model", help="a named base model: kokoro or tts-adapt-base (default: the default model)"
    )
    ap.add_argument("--checkpoint", help="a base checkpoint instead of --model")
    ap.add_argument("--config", help="its config (default: the config.yml beside the checkpoint)")
    ap.add_argument("--adapted", action="append", default=[], help="an adapted folder (repeatable)")
    ap.add_argument(
        "--references",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="known references (models with style encoders): recordings, corpus folders or file lists, "
        "labelled by speaker (repeatable); without it, the recordings shipped with the base model",
    )
    ap.add_argument("--per-speaker", type=int, default=PER_SPEAKER, help="known references per speaker")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=7860, help="port to listen on")
    ap.add_argument("--share", action="store_true", help="public Gradio link (needs internet)")
    own = ap.add_argument_group('the "Your voice" tab (voice-pack models: Kokoro)')
    own.add_argument(
        "--workdir",
        default=str(default_workdir()),
        help="the one folder that holds every job and upload (delete it to remove them)",
    )
    own.add_argument(
        "--curvature",
        help="a KFAC curvature file of the base model for LoRA + KFAC jobs (default: estimated once on "
        "Kokoro's own speech and kept in --workdir)",
    )
    own.add_argument(
        "--curvature-utterances", type=int, default=6, help="per stock voice (four voices) when estimated"
    )
    own.add_argument("--max-jobs", type=int, default=1, help="adaptations run at once (the rest wait)")
    own.add_argument("--no-own-voice", action="store_true", help="serve without the tab")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        checkpoint, config = resolve_model(args.checkpoint, args.config, args.model)
        voices = Voices.load(checkpoint, config, args.adapted, args.references, args.device, args.per_speaker)
    except (ValueError, FileNotFoundError) as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 2
    kind = "voices" if voices.voice_packs else "known references"
    log.info("serving %s with %d %s", ", ".join(voices.models), len(voices.references), kind)
    shop = None
    if voices.voice_packs and not args.no_own_voice:
        from tts_adapt.own_voice.jobs import JobStore
        from tts_adapt.own_voice.tab import Workshop

        if args.curvature and not Path(args.curvature).is_file():
            print(f"demo: error: --curvature {args.curvature} does not exist", file=sys.stderr)
            return 2
        shop = Workshop(
            store=JobStore(args.workdir, max_running=args.max_jobs),
            base=voices.models["base"],
            checkpoint=checkpoint,
            curvature=Path(args.curvature).resolve() if args.curvature else None,
            curvature_utterances=args.curvature_utterances,
            device=args.device,
        )
        log.info("your-voice jobs and uploads live in %s", shop.store.root)
    build_app(voices, shop).launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
