"""Which stock voice sounds most like a target speaker (speaker similarity), to start a new voice from.

A new voice pack learns faster, and stays a plausible voice, when it starts from the stock voice
nearest the target. "Nearest" is Resemblyzer's cosine between the target's centroid and each stock
voice's centroid. The stock centroids are shipped (``assets/kokoro/voice_embeddings.safetensors``):
each voice reading :data:`SENTENCES`, embedded, averaged and normalised. They are remade by

    python -m tts_adapt.models.kokoro.nearest --write

which is also the check that the shipped file matches the installed model and encoder.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..styletts2.config import KOKORO_DIR

log = logging.getLogger(__name__)

EMBEDDINGS = KOKORO_DIR / "voice_embeddings.safetensors"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
)


def stock_centroids(path: str | Path = EMBEDDINGS) -> dict[str, np.ndarray]:
    from ...utils.io import load_tensors

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{path} not found: make it with python -m tts_adapt.models.kokoro.nearest --write"
        )
    tensors, _ = load_tensors(path)
    return {k: v.numpy().astype(np.float64) for k, v in tensors.items()}


def target_centroid(audio: Sequence, limit: int = 20) -> np.ndarray:
    """The unit-norm mean Resemblyzer embedding of up to ``limit`` recordings (paths or 24 kHz waves)."""
    from ...evaluation.similarity import ResemblyzerEncoder, centroid

    return centroid(ResemblyzerEncoder().embed(list(audio)[:limit]))


def rank_voices(target: np.ndarray, stock: dict[str, np.ndarray]) -> list[tuple[str, float]]:
    """Stock voices by cosine similarity to ``target``, nearest first."""
    t = target / np.linalg.norm(target)
    scores = {n: float(np.dot(t, v / np.linalg.norm(v))) for n, v in stock.items()}
    return sorted(scores.items(), key=lambda kv: -kv[1])


def nearest_voice(audio: Sequence, limit: int = 20) -> tuple[str, list[tuple[str, float]]]:
    """``(name, ranking)`` of the stock voice nearest the speaker of ``audio``."""
    ranking = rank_voices(target_centroid(audio, limit), stock_centroids())
    return ranking[0][0], ranking


def write_embeddings(path: str | Path = EMBEDDINGS) -> Path:
    """Render :data:`SENTENCES` in every stock voice with the installed Kokoro and save the centroids."""
    import torch

    from ...evaluation.similarity import ResemblyzerEncoder, centroid
    from ...utils.io import save_tensors
    from ..styletts2 import load_official
    from . import kokoro_paths

    model = load_official(*kokoro_paths()).eval()
    encoder = ResemblyzerEncoder()
    out = {}
    for name in sorted(model.voices.names()):
        waves = [(model.synthesize(s, reference=name, seed=0)[0], 24000) for s in SENTENCES]
        out[name] = torch.from_numpy(centroid(encoder.embed(waves)).astype(np.float32))
        log.info("embedded %s", name)
    meta = {"sentences": list(SENTENCES), "encoder": "resemblyzer", "synthesis": "seed 0, speed 1"}
    save_tensors(Path(path), out, meta)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="remake the shipped stock-voice centroids")
    ap.add_argument("--out", default=str(EMBEDDINGS), help="where to write them")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.write:
        print(write_embeddings(args.out))
    else:
        for name, v in sorted(stock_centroids(args.out).items()):
            print(name, v.shape)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
