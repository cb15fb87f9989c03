"""How well a corpus's speakers are told apart by a speaker encoder (Resemblyzer's GE2E model).

Used to check that the synthetic corpus's voices behave like distinct speakers: utterances of one
speaker should be more similar to each other than to other speakers' utterances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .utterance import Utterance


def embed_utterances(utts: Sequence[Utterance], device: str = "cpu", progress: bool = True) -> np.ndarray:
    """L2-normalised Resemblyzer embeddings ``[N, 256]`` (needs the ``eval`` extra)."""
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as e:  # pragma: no cover - optional dependency
        raise RuntimeError(f"the speaker check needs resemblyzer (pip install 'tts-adapt[eval]'): {e}") from e
    from ..audio import load_audio
    from ..utils.progress import progress_bar as tqdm

    encoder = VoiceEncoder(device, verbose=False)
    out = []
    for u in tqdm(utts, desc="embedding", unit="utt", disable=not progress):
        wave = preprocess_wav(load_audio(u.audio_path, sr=16000), source_sr=16000)
        out.append(encoder.embed_utterance(wave))
    emb = np.stack(out).astype(np.float64)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def separability(embeddings: np.ndarray, speakers: Sequence[str]) -> dict[str, float | None]:
    """Mean within- and between-speaker cosine similarity, their gap, and leave-one-out
    nearest-centroid speaker accuracy. A one-speaker corpus (an adaptation target) has only the
    within-speaker figures; the between-speaker ones are ``None``."""
    labels = np.asarray(speakers)
    sim = embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(labels), dtype=bool)
    within = sim[same & off_diag]
    between = sim[~same]
    if within.size == 0:
        raise ValueError("separability needs at least two utterances of some speaker")
    names = sorted(set(labels.tolist()))
    base = {
        "within_mean": float(within.mean()),
        "within_std": float(within.std()),
        "speakers": len(names),
        "utterances": len(labels),
    }
    if len(names) < 2:
        none = ("between_mean", "between_std", "between_max", "gap", "nearest_centroid_accuracy")
        return {**base, **dict.fromkeys(none)}
    correct = 0
    for i in range(len(labels)):
        scores = []
        for s in names:
            mask = (labels == s) & (np.arange(len(labels)) != i)
            if not mask.any():
                scores.append(-np.inf)
                continue
            c = embeddings[mask].mean(axis=0)
            scores.append(float(embeddings[i] @ c / np.linalg.norm(c)))
        correct += names[int(np.argmax(scores))] == labels[i]
    return {
        **base,
        "between_mean": float(between.mean()),
        "between_std": float(between.std()),
        "between_max": float(between.max()),
        "gap": float(within.mean() - between.mean()),
        "nearest_centroid_accuracy": correct / len(labels),
    }


def corpus_separability(
    utts: Sequence[Utterance], device: str = "cpu", progress: bool = True
) -> dict[str, float | None]:
    return separability(embed_utterances(utts, device, progress), [u.speaker for u in utts])
