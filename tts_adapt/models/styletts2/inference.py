"""Text -> waveform, following the LibriTTS inference notebook step by step.

Durations come from ``sigmoid(duration_logits).sum(-1)`` (divided by ``speed``, Kokoro's control),
rounded and clamped to at least one frame. For the HiFi-GAN decoder the frame-aligned features are
shifted right by one frame; the output's last 50 samples are dropped for either decoder, as the notebook
does (the original model leaves a click there), unless the config says otherwise (Kokoro keeps them).

A voice-pack model (Kokoro) has no style encoder and no sampler: its style is the pack's row for the
text's length, used as ``ref_s`` with nothing sampled, which is exactly Kokoro's forward pass.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...audio import reference_mel
from ...text import length_to_mask
from . import config as C
from .frontend import TextFrontend
from .source import SourceDraws
from .voice_packs import VoicePack, resolve_voice

TRIM_SAMPLES = 50  # the notebook's trim; a config's ``inference.trim_samples`` overrides it


@dataclass
class SynthesisResult:
    """Everything the notebook computes on the way to the waveform (useful for tests and plots)."""

    wave: torch.Tensor
    s_pred: torch.Tensor
    ref: torch.Tensor
    s: torch.Tensor
    durations: torch.Tensor
    pred_dur: torch.Tensor
    alignment: torch.Tensor
    F0: torch.Tensor
    N: torch.Tensor


@contextlib.contextmanager
def _stage(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Adds the wall time of the block to ``timings[name]`` (no-op without a dict)."""
    if timings is None:
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def alignment_from_durations(pred_dur: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment ``[T_text, sum(pred_dur)]``: token i covers its run of frames."""
    ends = torch.cumsum(pred_dur.long(), 0)
    starts = ends - pred_dur.long()
    frames = torch.arange(int(ends[-1]), device=pred_dur.device)
    return ((frames >= starts[:, None]) & (frames < ends[:, None])).to(torch.float32)


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """``out[..., 0] = x[..., 0]; out[..., 1:] = x[..., :-1]`` (the hifigan one-frame shift)."""
    return torch.cat([x[..., :1], x[..., :-1]], dim=-1)


def model_voice_packs(model: nn.Module) -> dict[str, VoicePack]:
    """A voice-pack model's voices: those its config ships with, and any it learned."""
    return model.voices.packs()


def voice_pack_for(model: nn.Module, voice: Any) -> VoicePack:
    """A name or blend of the model's packs (its default voice for None), a pack file or an array."""
    if voice is None:
        voice = model.config.get("default_voice")
        if voice is None:
            raise ValueError("this model has no default voice: pass a voice pack (--voice NAME or a file)")
    return resolve_voice(voice, model_voice_packs(model)).check_width(2 * model.style_dim)


def style_from_reference(model: nn.Module, reference: Any) -> torch.Tensor | VoicePack:
    """A wav path, waveform array/tensor (24 kHz) or a precomputed ``ref_s [1, 2*style_dim]``; for a
    voice-pack model, a voice (name, blend, pack file, :class:`VoicePack`) or None for its default."""
    param = next(model.parameters())
    width = 2 * model.style_dim
    if model.uses_voice_packs:
        if isinstance(reference, torch.Tensor) and reference.dim() == 2 and reference.shape == (1, width):
            return reference.to(param)
        return voice_pack_for(model, reference)
    if (
        isinstance(reference, torch.Tensor)
        and reference.shape[-1] == width
        and reference.numel() <= 4 * width
    ):
        return reference.reshape(-1, width).to(param)
    if reference is None:
        raise ValueError(
            "synthesize needs a reference: a wav path, a 24 kHz waveform, or a precomputed ref_s"
        )
    if not isinstance(reference, (str, os.PathLike, np.ndarray, torch.Tensor, list)):
        raise ValueError(f"unsupported reference of type {type(reference).__name__}")
    mel = reference_mel(np.asarray(reference, dtype=np.float32) if isinstance(reference, list) else reference)
    with torch.no_grad():
        return model.compute_style(mel.to(param))


@torch.no_grad()
def infer_tokens(
    model: nn.Module,
    tokens: torch.Tensor,
    ref_s: torch.Tensor | None,
    alpha: float = 0.3,
    beta: float = 0.7,
    diffusion_steps: int = 5,
    embedding_scale: float = 1.0,
    noise: torch.Tensor | None = None,
    step_noises: torch.Tensor | None = None,
    deterministic: bool = False,
    timings: dict[str, float] | None = None,
    draws: SourceDraws | None = None,
    speed: float = 1.0,
) -> SynthesisResult:
    """The notebook's ``inference()`` body for one utterance of ids ``[1, T]`` (start token included).

    ``ref_s`` is the reference style; without one (a single-speaker model, as in the LJSpeech notebook)
    the sampled style is used as is. A model without a sampler (Kokoro) uses ``ref_s`` as it is.

    ``timings``, if given, receives seconds per stage (text, bert, sampler, predictor, decoder).
    ``draws`` fixes the decoder source's random phases and noise (default: torch's RNG).
    """
    sd = model.style_dim
    param = next(model.parameters())
    device = param.device
    tokens = tokens.to(device)
    input_lengths = torch.tensor([tokens.shape[-1]], device=device)
    text_mask = length_to_mask(input_lengths)
    with _stage(timings, "text_encoder"):
        t_en = model.text_encoder(tokens, input_lengths, text_mask)
    with _stage(timings, "bert"):
        bert_dur = model.bert(tokens, attention_mask=(~text_mask).int())
        d_en = model.bert_encoder(bert_dur).transpose(-1, -2)
    if not model.has_module("diffusion"):
        if ref_s is None:
            raise ValueError("a model without a style sampler needs a style (a voice pack row) to speak")
        s_pred = ref_s.to(param)
        ref, s = s_pred[:, :sd], s_pred[:, sd:]
    else:
        with _stage(timings, "diffusion_sampler"):
            if noise is None:
                noise = torch.randn((1, 2 * sd)).unsqueeze(1).to(device)
            s_pred = model.sample_style(
                noise.to(param), bert_dur, ref_s, diffusion_steps, embedding_scale, step_noises
            )
        if ref_s is None:
            ref, s = s_pred[:, :sd], s_pred[:, sd:]
        else:
            ref = alpha * s_pred[:, :sd] + (1 - alpha) * ref_s[:, :sd]
            s = beta * s_pred[:, sd:] + (1 - beta) * ref_s[:, sd:]
    with _stage(timings, "predictor"):
        d = model.predictor.text_encoder(d_en, s, input_lengths, text_mask)
        durations = model.predictor.durations(d)
        if speed != 1.0:
            durations = durations / speed
        pred_dur = torch.round(durations.squeeze(0)).clamp(min=1)
        aln = alignment_from_durations(pred_dur).to(d)
        en = d.transpose(-1, -2) @ aln.unsqueeze(0)
        asr = t_en @ aln.unsqueeze(0)
        if model.decoder_type == "hifigan":
            en, asr = shift_right(en), shift_right(asr)
        F0, N = model.predictor.F0Ntrain(en, s)
    with _stage(timings, "decoder"):
        wave = model.decoder(asr, F0, N, ref, deterministic=deterministic, draws=draws).squeeze()
    trim = C.trim_samples(model.config)
    if trim:
        wave = wave[..., :-trim]
    return SynthesisResult(wave, s_pred, ref, s, durations, pred_dur, aln, F0, N)


def text_to_ids(
    text: str, phonemes: str | None, max_tokens: int, model: nn.Module | None = None
) -> list[int]:
    """English text (phonemised with espeak-ng) or IPA ``phonemes`` -> token ids of one piece, start
    token first, in the model's text convention (the StyleTTS 2 one without a model). A text longer than
    the context is an error here; :func:`synthesize` splits such texts instead."""
    frontend = TextFrontend.for_model(model) if model is not None else TextFrontend(max_tokens=max_tokens)
    frontend.max_tokens = max_tokens
    ids = frontend.encode(phonemes if phonemes is not None else frontend.phonemize(text))
    if len(ids) > max_tokens:
        raise ValueError(
            f"text is too long: {len(ids)} tokens, PL-BERT takes at most {max_tokens}; "
            "split it into sentences"
        )
    return ids


def synthesize(
    model: nn.Module,
    text: str,
    reference: Any = None,
    alpha: float = 0.3,
    beta: float = 0.7,
    diffusion_steps: int = 5,
    embedding_scale: float = 1.0,
    seed: int | None = None,
    phonemes: str | None = None,
    deterministic: bool = False,
    speed: float = 1.0,
) -> tuple[np.ndarray, int]:
    """English text (or IPA via ``phonemes``) in the reference's voice -> ``(float32 wave, sample_rate)``.

    ``reference`` is a recording (or ``ref_s``) for a StyleTTS 2 with style encoders, a voice for a
    voice-pack model (see :func:`style_from_reference`). A text longer than the model's context is
    spoken in pieces cut at sentence ends, joined end to end. ``seed`` seeds torch's RNG for this call
    only (the caller's RNG state is restored), so the same seed gives the same audio; the draws happen in
    the notebook's order.
    """
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    frontend = TextFrontend.for_model(model)
    pieces = frontend.pieces(None if phonemes is not None else text, phonemes)
    was_training = model.training
    model.eval()
    try:
        if reference is None and not model.multispeaker and not model.uses_voice_packs:
            style = None  # a single-speaker model samples its style from the text alone
        else:
            style = style_from_reference(model, reference)
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            wave = speak_pieces(
                pieces,
                style,
                frontend,
                lambda tokens, ref_s: infer_tokens(
                    model,
                    tokens,
                    ref_s,
                    alpha,
                    beta,
                    diffusion_steps,
                    embedding_scale,
                    deterministic=deterministic,
                    speed=speed,
                ),
            )
    finally:
        model.train(was_training)
    return wave, model.sample_rate


def speak_pieces(
    pieces: list[list[int]],
    style: torch.Tensor | VoicePack | None,
    frontend: TextFrontend,
    infer: Callable[[torch.Tensor, torch.Tensor | None], SynthesisResult],
) -> np.ndarray:
    """Each piece's waveform, end to end; a voice pack gives each piece the row for its length."""
    waves = []
    for ids in pieces:
        ref_s = style.style_for(frontend.n_phoneme_tokens(ids)) if isinstance(style, VoicePack) else style
        waves.append(infer(torch.tensor([ids], dtype=torch.long), ref_s).wave.float().cpu())
    return torch.cat(waves).numpy()
