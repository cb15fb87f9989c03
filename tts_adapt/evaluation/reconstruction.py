"""Reconstruction margin: does the decoder carry a voice when everything but the style is given?

Zero-shot similarity mixes two failures: the predicted prosody and durations, and the decoder's
rendering of the voice. This diagnostic removes the first. Each of the first ``rebuilt`` utterances of
a voice is rebuilt whole from its own alignment (the recogniser's path, as in pre-training), its true
F0 and energy, and an acoustic style taken from

* ``other``: another utterance of the same voice (what a zero-shot reference gives the decoder),
* ``same``: the utterance itself (an upper bound for the style encoder),
* ``wrong``: an utterance of the next voice (how much of the voice the style carries at all).

Each rebuilt utterance is scored like zero-shot speech: cosine to its voice's centroid (from the
voice's recordings that take no part in the rebuild) minus the mean cosine to the other voices'
centroids. Run it on a pre-training checkpoint folder or a packaged model:

    python -m tts_adapt.evaluation.reconstruction --checkpoint RUN/stages/first/checkpoints/step-0005500 \\
        --config RUN/config.yml --data corpus --subset test-synth --recognizer per/recognizer.safetensors
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..utils.help import HelpFormatter

STYLES = ("other", "same", "wrong")


def load_for_reconstruction(checkpoint: str | Path, config: str | Path) -> nn.Module:
    """A model from a pre-training checkpoint folder (``weights.safetensors`` of the trained modules)
    or from a model file that ``load_official`` reads."""
    from ..models.styletts2 import build_model, load_official
    from ..utils.io import load_tensors

    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        return load_official(checkpoint, config).eval()
    weights_file = checkpoint / "weights.safetensors"
    if not weights_file.is_file():
        raise ValueError(f"{checkpoint}: a checkpoint folder must hold weights.safetensors")
    model = build_model(config)
    weights, _ = load_tensors(weights_file)
    state = model.state_dict()
    needed = [k for k in state if k.split(".", 1)[0] in ("text_encoder", "style_encoder", "decoder")]
    missing = [k for k in needed if k not in weights]
    if missing:
        raise ValueError(f"{weights_file} lacks {len(missing)} decoder/encoder tensors, e.g. {missing[:2]}")
    with torch.no_grad():
        for k, v in weights.items():
            if k in state:
                state[k].copy_(v.to(state[k].dtype))
    return model.eval()


def reconstruction_margin(
    model: nn.Module,
    items_by_voice: dict[str, Sequence],
    recognizer: nn.Module,
    encoder,
    style: str = "other",
    rebuilt: int = 2,
    f0_method: str = "yin",
) -> dict:
    """Per-voice and mean margins of whole-utterance reconstructions (see the module docstring).

    ``items_by_voice`` maps each voice to its prepared utterances (at least ``rebuilt + 2``: the
    rebuilt ones, one style reference, and at least one for the voice's centroid)."""
    from ..alignment.table import AlignmentTable
    from ..audio import log_energy
    from ..data import TTSDataset, collate
    from ..objective.f0_table import F0Table
    from .similarity import centroid

    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    voices = sorted(items_by_voice)
    if len(voices) < 2:
        raise ValueError("the margin needs at least two voices")
    for v in voices:
        if len(items_by_voice[v]) < rebuilt + 2:
            raise ValueError(
                f"voice {v} has {len(items_by_voice[v])} utterances; {rebuilt + 2} are needed "
                f"({rebuilt} rebuilt, one style reference, at least one for its centroid)"
            )
    used = [it for v in voices for it in items_by_voice[v][: rebuilt + 1]]
    sample_rate = int(getattr(model, "sample_rate", 24000))
    with tempfile.TemporaryDirectory() as tmp:
        table = AlignmentTable.build(
            model, used, Path(tmp) / "paths.safetensors", "recognizer", progress=False, recognizer=recognizer
        )
        f0 = F0Table.build(used, Path(tmp) / "f0.safetensors", f0_method, sample_rate, False)
        ds = TTSDataset(used, multispeaker=False)
        index = {it.id: i for i, it in enumerate(used)}
        waves: dict[str, tuple[str, np.ndarray]] = {}
        for n, v in enumerate(voices):
            source_voice = voices[(n + 1) % len(voices)] if style == "wrong" else v
            ref = collate([ds[index[items_by_voice[source_voice][rebuilt].id]]])
            with torch.no_grad():
                ref_style = model.style_encoder(ref.mels.unsqueeze(1))
            for it in items_by_voice[v][:rebuilt]:
                b = collate([ds[index[it.id]]])
                with torch.no_grad():
                    s = model.style_encoder(b.mels.unsqueeze(1)) if style == "same" else ref_style
                    hard = table(b)
                    frames = hard.shape[-1]
                    asr = model.text_encoder(b.tokens, b.token_lengths, b.text_mask) @ hard
                    pitch = torch.from_numpy(f0.crop(it.id, 0, 2 * frames)).float().unsqueeze(0)
                    energy = log_energy(b.mels[..., : 2 * frames])
                    if energy.shape[-1] < 2 * frames:
                        energy = nn.functional.pad(energy, (0, 2 * frames - energy.shape[-1]))
                    wave = model.decoder(asr, pitch[..., : 2 * frames], energy, s, deterministic=True)
                waves[it.id] = (v, wave.squeeze().numpy())
    profiles = {
        v: centroid(encoder.embed([str(x.utterance.audio_path) for x in items_by_voice[v][rebuilt + 1 :]]))
        for v in voices
    }
    own: dict[str, list[float]] = {v: [] for v in voices}
    other: dict[str, list[float]] = {v: [] for v in voices}
    rebuilt_voices = [v for v, _ in waves.values()]
    embeddings = encoder.embed([(wave, sample_rate) for _, wave in waves.values()])  # one batched pass
    for v, e in zip(rebuilt_voices, embeddings):
        own[v].append(float(e @ profiles[v]))
        other[v].append(float(np.mean([e @ profiles[o] for o in voices if o != v])))
    per_voice = {v: float(np.mean(own[v]) - np.mean(other[v])) for v in voices}
    return {
        "style": style,
        "voices": len(voices),
        "rebuilt_per_voice": rebuilt,
        "sim_own": float(np.mean([x for v in voices for x in own[v]])),
        "sim_other": float(np.mean([x for v in voices for x in other[v]])),
        "margin": float(np.mean(list(per_voice.values()))),
        "voices_positive": sum(m > 0 for m in per_voice.values()),
        "per_voice": per_voice,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from ..alignment.recognizer import load_recognizer
    from ..data import load_corpus
    from ..data.prepare import prepare_corpus
    from .similarity import get_speaker_encoder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, help="pre-training checkpoint folder or model file")
    p.add_argument("--config", required=True, help="the model's config.yml")
    p.add_argument("--data", required=True, help="corpus folder (make-corpus layout or any loadable one)")
    p.add_argument("--subset", help="subset of the corpus, e.g. test-synth (default: all)")
    p.add_argument("--speakers", help="voices, comma-separated (default: every voice in the data)")
    p.add_argument("--recognizer", required=True, help="CTC recogniser whose paths align the utterances")
    p.add_argument("--style", choices=STYLES, default="other", help="where the rebuild's style comes from")
    p.add_argument("--rebuilt", type=int, default=2, help="utterances rebuilt per voice")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", help="write the result as JSON here too")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_for_reconstruction(args.checkpoint, args.config)
    utts = load_corpus(args.data, subsets=[args.subset] if args.subset else None)
    items = prepare_corpus(utts, progress=False).items
    wanted = set(args.speakers.split(",")) if args.speakers else None
    by_voice: dict[str, list] = {}
    for it in items:
        if wanted is None or it.speaker in wanted:
            by_voice.setdefault(it.speaker, []).append(it)
    if wanted and wanted - set(by_voice):
        raise SystemExit(f"--speakers: no utterances for {', '.join(sorted(wanted - set(by_voice)))}")
    result = reconstruction_margin(
        model,
        by_voice,
        load_recognizer(args.recognizer),
        get_speaker_encoder("resemblyzer"),
        args.style,
        args.rebuilt,
    )
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        from ..utils.io import write_text

        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
