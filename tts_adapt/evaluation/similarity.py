"""Speaker similarity: cosine of speaker-verification embeddings, with swappable encoders.

Backends (``SPEAKER_BACKENDS``):

* ``resemblyzer`` (default): the GE2E d-vector encoder whose weights ship inside the ``resemblyzer``
  wheel, so it runs offline. Utterances are cut into 1.6 s partials as Resemblyzer does, and the partials
  of a whole batch go through the network in one pass.
* ``wavlm-base-plus-sv``: ``microsoft/wavlm-base-plus-sv`` x-vectors through ``transformers``.
* ``ecapa``: SpeechBrain's ECAPA-TDNN (``speechbrain/spkrec-ecapa-voxceleb``).

The last two load only weights that are already on disk (a local folder or the Hugging Face cache);
when they are missing the error names what to fetch. Embeddings are cached by audio content.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np

from .audio_io import AudioInput, describe, load_wave, wave_hash
from .cache import EmbeddingCache

log = logging.getLogger(__name__)


class SpeakerEncoder:
    """Base class: subclasses set ``name``/``sample_rate`` and implement ``_embed_waves``."""

    name = "base"
    sample_rate = 16000

    def __init__(self, cache: EmbeddingCache | None = None, batch_size: int = 16) -> None:
        self.cache = cache if cache is not None else EmbeddingCache()
        self.batch_size = batch_size

    @property
    def cache_id(self) -> str:
        return self.name

    def _embed_waves(self, waves: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, audios: Sequence[AudioInput]) -> np.ndarray:
        """``[N, D]`` L2-normalised embeddings; cached items are not recomputed, the rest go in batches."""
        waves = [load_wave(a, self.sample_rate) for a in audios]
        keys = [wave_hash(w, self.sample_rate) for w in waves]
        out: list[np.ndarray | None] = [self.cache.get(self.cache_id, k) for k in keys]
        todo = [i for i, v in enumerate(out) if v is None]
        for i in todo:
            if waves[i].size < self.sample_rate // 10:
                raise ValueError(f"audio too short for a speaker embedding (< 0.1 s): {describe(audios[i])}")
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            vecs = self._embed_waves([waves[i] for i in idx])
            for i, v in zip(idx, vecs):
                v = np.asarray(v, dtype=np.float32)
                v = v / max(float(np.linalg.norm(v)), 1e-12)
                self.cache.put(self.cache_id, keys[i], v)
                out[i] = v
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)

    def similarity(self, reference: AudioInput, hypothesis: AudioInput) -> float:
        e = self.embed([reference, hypothesis])
        return float(e[0] @ e[1])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``[N, D]`` and ``[N, D]`` (or ``[D]``) arrays."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """Unit-norm mean of unit embeddings: one speaker's profile from several recordings."""
    m = np.asarray(embeddings, dtype=np.float64).mean(axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


class ResemblyzerEncoder(SpeakerEncoder):
    name = "resemblyzer"
    sample_rate = 16000

    def __init__(
        self, cache: EmbeddingCache | None = None, batch_size: int = 16, device: str = "cpu"
    ) -> None:
        super().__init__(cache, batch_size)
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as e:  # webrtcvad needs pkg_resources: setuptools<81 or webrtcvad-wheels
            raise RuntimeError(
                f"the resemblyzer backend needs 'resemblyzer' and a working 'webrtcvad' ({e}); install "
                "'resemblyzer webrtcvad-wheels' (or setuptools<81 for the original webrtcvad)"
            ) from e
        self.encoder = VoiceEncoder(device, verbose=False)
        self.device = device

    def _embed_waves(self, waves: list[np.ndarray]) -> np.ndarray:
        import torch
        from resemblyzer import preprocess_wav
        from resemblyzer.audio import wav_to_mel_spectrogram

        mels, owners = [], []
        for n, w in enumerate(waves):
            w = preprocess_wav(w)  # volume normalisation + VAD-based removal of long silences
            if w.size == 0:
                raise ValueError("no speech left after Resemblyzer's silence removal")
            wav_slices, mel_slices = self.encoder.compute_partial_slices(len(w), rate=1.3, min_coverage=0.75)
            if wav_slices[-1].stop >= len(w):
                w = np.pad(w, (0, wav_slices[-1].stop - len(w)))
            mel = wav_to_mel_spectrogram(w)
            for s in mel_slices:
                mels.append(mel[s])
                owners.append(n)
        owners_arr = np.array(owners)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(mels), 64):
                batch = torch.from_numpy(np.stack(mels[start : start + 64])).to(self.device)
                parts.append(self.encoder(batch).cpu().numpy())
        partial = np.concatenate(parts)
        return np.stack([partial[owners_arr == n].mean(axis=0) for n in range(len(waves))])


def _hf_missing(model: str, e: Exception) -> FileNotFoundError:
    return FileNotFoundError(
        f"speaker-verification weights '{model}' are not available offline ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}). Download them once (e.g. `huggingface-cli download "
        f"{model}`) or pass --model-path to a local folder with config.json, preprocessor_config.json and "
        "the weights."
    )


class WavLMXVectorEncoder(SpeakerEncoder):
    """``WavLMForXVector`` from a local folder or the Hugging Face cache (never downloaded here)."""

    name = "wavlm-base-plus-sv"
    sample_rate = 16000
    default_model = "microsoft/wavlm-base-plus-sv"

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        batch_size: int = 8,
        device: str = "cpu",
        model_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(cache, batch_size)
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.model_ref = str(model_path or self.default_model)
        if model_path is not None and not os.path.isdir(model_path):
            raise FileNotFoundError(f"WavLM x-vector model folder not found: {model_path}")
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(self.model_ref, local_files_only=True)
            self.model = (
                WavLMForXVector.from_pretrained(self.model_ref, local_files_only=True).eval().to(device)
            )
        except OSError as e:
            raise _hf_missing(self.model_ref, e) from e
        self.device = device

    @property
    def cache_id(self) -> str:
        return f"{self.name}-{os.path.basename(self.model_ref.rstrip('/'))}"

    def _embed_waves(self, waves: list[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self.extractor(
            waves,
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
        return out.embeddings.float().cpu().numpy()


class EcapaEncoder(SpeakerEncoder):
    """SpeechBrain ECAPA-TDNN from a local folder holding ``hyperparams.yaml`` and its checkpoints."""

    name = "ecapa"
    sample_rate = 16000
    default_model = "speechbrain/spkrec-ecapa-voxceleb"

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        model_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(cache, batch_size)
        try:
            try:
                from speechbrain.inference.speaker import EncoderClassifier
            except ImportError:  # speechbrain < 1.0
                from speechbrain.pretrained import EncoderClassifier
        except ImportError as e:
            raise RuntimeError(
                "the ecapa backend needs the 'speechbrain' package (pip install speechbrain)"
            ) from e
        if model_path is None or not os.path.isfile(os.path.join(model_path, "hyperparams.yaml")):
            raise FileNotFoundError(
                f"ECAPA weights not found: pass --model-path to a local copy of {self.default_model} "
                "(a folder "
                f"with hyperparams.yaml, embedding_model.ckpt, mean_var_norm_emb.ckpt); got {model_path!r}"
            )
        self.model_ref = str(model_path)
        self.model = EncoderClassifier.from_hparams(
            source=self.model_ref, savedir=self.model_ref, run_opts={"device": device}
        )

    def _embed_waves(self, waves: list[np.ndarray]) -> np.ndarray:
        import torch

        n = max(len(w) for w in waves)
        batch = torch.zeros(len(waves), n)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(w)
        rel = torch.tensor([len(w) / n for w in waves])
        with torch.inference_mode():
            return self.model.encode_batch(batch, rel).squeeze(1).float().cpu().numpy()


SPEAKER_BACKENDS: dict[str, Callable[..., SpeakerEncoder]] = {
    "resemblyzer": ResemblyzerEncoder,
    "wavlm-base-plus-sv": WavLMXVectorEncoder,
    "ecapa": EcapaEncoder,
}


def get_speaker_encoder(
    backend: str = "resemblyzer",
    cache: EmbeddingCache | None = None,
    device: str = "cpu",
    model_path: str | os.PathLike | None = None,
) -> SpeakerEncoder:
    """Build a speaker encoder by backend name (see ``SPEAKER_BACKENDS``)."""
    if backend not in SPEAKER_BACKENDS:
        raise ValueError(
            f"unknown speaker-similarity backend {backend!r}; choose one of {sorted(SPEAKER_BACKENDS)}"
        )
    kwargs: dict = {"cache": cache, "device": device}
    if model_path is not None:
        if backend == "resemblyzer":
            raise ValueError(
                "the resemblyzer backend uses the encoder inside its wheel; --model-path does not apply"
            )
        kwargs["model_path"] = model_path
    return SPEAKER_BACKENDS[backend](**kwargs)
