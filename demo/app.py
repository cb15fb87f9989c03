"""Listen to the base model and adapted models side by side (Gradio).

    python demo/app.py --checkpoint Models/LibriTTS/epochs_2nd_00020.pth --config Models/LibriTTS/config.yml \
        --adapted runs/lora --adapted runs/lora-kfac --references my_voice/ [--port 7860]

Every system speaks the same text from the same reference recording with the same seed, so what you
hear is the difference between the models. The reference decides whose voice the *base* model imitates
(zero-shot); the adapted models should sound like their target speaker, and from a held-out speaker's
reference they show how much zero-shot ability is left.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("tts_adapt.demo")

MAX_SYSTEMS = 6
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass
class Voices:
    """Loaded systems by display name (models are loaded once, at start-up)."""

    models: dict[str, object] = field(default_factory=dict)
    references: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        checkpoint: str,
        config: str,
        adapted: list[str],
        references: list[str],
        device: str = "cpu",
    ) -> Voices:
        from tts_adapt.models.styletts2 import INFERENCE_MODULES, load_official
        from tts_adapt.train import load_adapted_model, read_manifest

        voices = cls()
        voices.models["base"] = load_official(checkpoint, config, modules=INFERENCE_MODULES).to(device)
        for folder in adapted:
            manifest = read_manifest(folder)
            name = f"{Path(folder).name} ({manifest['method']})"
            voices.models[name] = load_adapted_model(folder, checkpoint=checkpoint).to(device)
        if len(voices.models) > MAX_SYSTEMS:
            raise ValueError(f"at most {MAX_SYSTEMS} systems fit on the page, got {len(voices.models)}")
        for item in references:
            p = Path(item)
            files = [p]
            if p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
            for f in files:
                if not f.is_file():
                    raise FileNotFoundError(f"reference audio not found: {f}")
                voices.references[f"{f.parent.name}/{f.name}"] = f
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
        """Every system's (sample rate, waveform) for ``text`` in the reference's voice."""
        if not text or not text.strip():
            raise ValueError("type some text to speak")
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


def build_app(voices: Voices):
    import gradio as gr

    names = list(voices.models)

    def run(text, uploaded, chosen, alpha, beta, steps, scale, seed):
        reference = uploaded or (voices.references.get(chosen) if chosen else None)
        if reference is None:
            raise gr.Error("upload a reference recording or pick one from the list")
        try:
            result = voices.speak(text, reference, alpha, beta, steps, scale, seed)
        except (ValueError, FileNotFoundError) as e:
            raise gr.Error(str(e)) from e
        return [result[n] for n in names]

    with gr.Blocks(title="tts-adapt: base vs adapted voices") as app:
        gr.Markdown(
            "# Base vs adapted voices\nEvery system reads the same text from the same reference with the "
            "same seed. From the target speaker's reference the adapted models should sound closer to "
            "the target; from a held-out speaker's reference, a model that kept its zero-shot ability "
            "still imitates that speaker."
        )
        with gr.Row():
            with gr.Column(scale=2):
                text = gr.Textbox(label="Text", value="The quick brown fox jumps over the lazy dog.", lines=2)
                with gr.Row():
                    uploaded = gr.Audio(label="Reference recording", type="filepath", sources=["upload"])
                    chosen = gr.Dropdown(
                        label="…or a known reference", choices=sorted(voices.references), value=None
                    )
            with gr.Column(scale=1):
                alpha = gr.Slider(0, 1, value=0.3, step=0.05, label="alpha (acoustic style from diffusion)")
                beta = gr.Slider(0, 1, value=0.7, step=0.05, label="beta (prosody from diffusion)")
                steps = gr.Slider(2, 20, value=5, step=1, label="diffusion steps")
                scale = gr.Slider(1, 3, value=1, step=0.1, label="guidance scale")
                seed = gr.Number(value=0, precision=0, label="seed")
        button = gr.Button("Speak", variant="primary")
        outputs = [gr.Audio(label=n, type="numpy", interactive=False) for n in names]
        button.click(run, [text, uploaded, chosen, alpha, beta, steps, scale, seed], outputs)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="the pre-trained checkpoint")
    ap.add_argument("--config", required=True, help="its config.yml")
    ap.add_argument("--adapted", action="append", default=[], help="an adapted folder (repeatable)")
    ap.add_argument("--references", action="append", default=[], help="reference wav files or folders")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--share", action="store_true", help="public Gradio link (needs internet)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    voices = Voices.load(args.checkpoint, args.config, args.adapted, args.references, args.device)
    build_app(voices).launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
