"""Speech recognisers for intelligibility (WER/CER), behind one ``Transcriber`` interface.

* ``pocketsphinx`` (default, offline): PocketSphinx 5 with the en-us model inside its wheel. It is a
  2000s-era HMM recogniser: usable on clear human-like read speech, but it scores WER near 1.0 on
  espeak-ng output, so it cannot judge synthetic test corpora (use PER/MCD there).
* ``whisper`` (the field's convention, large-v3): Whisper through ``transformers``;
  ``faster-whisper`` and ``openai-whisper`` through their own packages. Weights must already be on
  disk (a local folder, the Hugging Face cache, or the openai-whisper cache); nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .audio_io import AudioInput, load_wave
from .text_norm import cer, wer


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
        self, model_path: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 8
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
    name = "faster-whisper"
    sample_rate = 16000

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu", **_: object) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise RuntimeError(
                "the faster-whisper backend needs 'faster-whisper' (pip install faster-whisper)"
            ) from e
        ref = str(model_path or "large-v3")
        try:
            self.model = WhisperModel(
                ref,
                device=device,
                compute_type="int8" if device == "cpu" else "float16",
                local_files_only=True,
            )
        except Exception as e:  # huggingface_hub raises its own not-found errors
            raise _missing(ref, e) from e

    def transcribe_waves(self, waves: list[np.ndarray]) -> list[str]:
        out = []
        for w in waves:
            segments, _ = self.model.transcribe(w, language="en", beam_size=1)
            out.append(" ".join(s.text.strip() for s in segments))
        return out


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
    "pocketsphinx": PocketSphinxTranscriber,
    "whisper": HFWhisperTranscriber,
    "faster-whisper": FasterWhisperTranscriber,
    "openai-whisper": OpenAIWhisperTranscriber,
}


def get_transcriber(
    backend: str = "pocketsphinx", model_path: str | os.PathLike | None = None, device: str = "cpu"
) -> Transcriber:
    if backend not in ASR_BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r}; choose one of {sorted(ASR_BACKENDS)}")
    if backend == "pocketsphinx":
        if model_path is not None:
            raise ValueError(
                "the pocketsphinx backend uses the en-us model inside its wheel; --model-path does not apply"
            )
        return PocketSphinxTranscriber()
    return ASR_BACKENDS[backend](model_path=model_path, device=device)
