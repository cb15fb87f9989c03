"""Synthesis from an ONNX export (:mod:`.onnx`) with onnxruntime, step for step like PyTorch's.

The graphs run in onnxruntime; the glue between them (sampler loop, guidance, durations, alignment) is
the very code the PyTorch path uses (:mod:`tts_adapt.models.styletts2.inference` and the diffusion
sampler), run on small tensors. Random draws (initial noise, per-step noise, the source's phases and
noise) come from torch's RNG in the order the PyTorch model draws them, so a seed gives the same voice
in both (up to float rounding).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import reference_mel
from ..models.styletts2.config import load_config, trim_samples, voice_pack_file
from ..models.styletts2.diffusion import RHO, SIGMA_MAX, SIGMA_MIN
from ..models.styletts2.diffusion.kdiffusion import edm_scalings
from ..models.styletts2.diffusion.sampler import ADPM2Sampler, KarrasSchedule
from ..models.styletts2.frontend import TextFrontend
from ..models.styletts2.harmonic import HarmonicSource
from ..models.styletts2.inference import (
    SynthesisResult,
    _stage,
    alignment_from_durations,
    shift_right,
    speak_pieces,
)
from ..models.styletts2.source import SineGen, SourceDraws, upsample_f0
from ..models.styletts2.style_encoder import MIN_FRAMES
from ..models.styletts2.voice_packs import VoicePack, read_bundle, resolve_voice
from .onnx import CONFIG, GRAPH_MODULES, GRAPH_ORDER, MANIFEST


class OnnxSynthesizer:
    """An exported model opened with onnxruntime: ``synthesize(text, reference)`` like the PyTorch one."""

    def __init__(
        self, folder: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError("running an ONNX export needs onnxruntime: pip install onnxruntime") from e
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: expected a folder written by 'tts-adapt export'")
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        if self.manifest.get("format") != "tts-adapt-onnx":
            raise ValueError(
                f"{path}: 'format' must be 'tts-adapt-onnx', got {self.manifest.get('format')!r}"
            )
        graphs = self.manifest.get("graphs", {})
        missing = [g for g in GRAPH_ORDER if g not in graphs and g not in GRAPH_MODULES]
        if missing:
            raise ValueError(f"{path}: 'graphs' lacks {missing}")
        if ("denoiser" in graphs) != ("fixed_embedding" in graphs):
            raise ValueError(f"{path}: 'graphs' must list both or neither of denoiser and fixed_embedding")
        self.graphs = tuple(g for g in GRAPH_ORDER if g in graphs)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = providers or ["CPUExecutionProvider"]
        self.sessions = {}
        for name in self.graphs:
            file = self.folder / graphs[name]["file"]
            if not file.is_file():
                raise FileNotFoundError(f"{file} not found (listed in {path})")
            self.sessions[name] = ort.InferenceSession(str(file), opts, providers=providers)
        m = self.manifest
        self.sample_rate = int(m["sample_rate"])
        self.style_dim = int(m["style_dim"])
        self.multispeaker = bool(m["multispeaker"])
        self.decoder_type = str(m["decoder_type"])
        self.sigma_data = float(m["sigma_data"]) if m.get("sigma_data") is not None else None
        self.max_tokens = int(m["max_tokens"])
        config_path = self.folder / CONFIG
        self.config = load_config(config_path) if config_path.is_file() else {"model_params": {}}
        self.frontend = TextFrontend.for_config(self.config, self.max_tokens)
        self._voice_packs: dict[str, VoicePack] | None = None
        self.samples_per_f0_frame = int(m["samples_per_f0_frame"])
        if self.decoder_type == "harmonic":
            self.harmonic_source = HarmonicSource(**m["sine_generator"])
        else:
            self.sine_generator = SineGen(**m["sine_generator"])

    def excitation(
        self,
        F0: torch.Tensor,
        deterministic: bool = False,
        draws: SourceDraws | None = None,  # noqa: N803
    ) -> torch.Tensor:
        """The decoder graph's ``excitation`` input for an F0 curve, computed as the PyTorch model does
        (same draws from torch's RNG)."""
        if self.decoder_type == "harmonic":
            return self.harmonic_source(F0, deterministic, None, draws)
        excitation, _, _ = self.sine_generator(
            upsample_f0(F0, self.samples_per_f0_frame), deterministic, None, draws
        )
        return excitation

    def run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Run graph ``name`` on tensors given in the manifest's input order; outputs as tensors."""
        names = self.manifest["graphs"][name]["inputs"]
        feed = {n: x.detach().cpu().numpy() for n, x in zip(names, inputs)}
        return [torch.from_numpy(np.asarray(y)) for y in self.sessions[name].run(None, feed)]

    def has_module(self, name: str) -> bool:
        """Whether the exported model has ``name`` (the modules without a graph of their own: yes)."""
        needed = [g for g, module in GRAPH_MODULES.items() if module == name]
        return all(g in self.graphs for g in needed)

    @property
    def uses_voice_packs(self) -> bool:
        return "style" not in self.graphs

    # -- style ------------------------------------------------------------------------------------
    def compute_style(self, mel: torch.Tensor) -> torch.Tensor:
        """Reference log-mel ``[1, 80, T]`` -> ``ref_s [1, 2*style_dim]``."""
        if mel.shape[-1] < MIN_FRAMES:
            raise ValueError(
                f"reference is too short for the style encoder: {mel.shape[-1]} mel frames, need at least "
                f"{MIN_FRAMES} (about 0.8 s of speech after trimming silence)"
            )
        return self.run("style", mel.float())[0]

    def style_from_reference(self, reference: Any) -> torch.Tensor | VoicePack:
        """A wav path, 24 kHz waveform, or a precomputed ``ref_s [1, 2*style_dim]``; for a voice-pack
        model, a voice (name, blend, pack file) or None for its default."""
        width = 2 * self.style_dim
        if self.uses_voice_packs:
            if isinstance(reference, torch.Tensor) and reference.shape == (1, width):
                return reference.float()
            if self._voice_packs is None:
                packs = voice_pack_file(self.config)
                self._voice_packs = read_bundle(packs) if packs is not None else {}
            voice = reference if reference is not None else self.config.get("default_voice")
            if voice is None:
                raise ValueError("this export has no default voice: pass a voice pack")
            return resolve_voice(voice, self._voice_packs).check_width(width)
        if (
            isinstance(reference, torch.Tensor)
            and reference.shape[-1] == width
            and reference.numel() == width
        ):
            return reference.reshape(1, width).float()
        if reference is None:
            raise ValueError(
                "synthesis needs a reference: a wav path, a 24 kHz waveform, or a precomputed ref_s"
            )
        if not isinstance(reference, (str, os.PathLike, np.ndarray, torch.Tensor, list)):
            raise ValueError(f"unsupported reference of type {type(reference).__name__}")
        wave = np.asarray(reference, dtype=np.float32) if isinstance(reference, list) else reference
        return self.compute_style(reference_mel(wave))

    def sample_style(
        self,
        noise: torch.Tensor,
        bert_dur: torch.Tensor,
        ref_s: torch.Tensor | None,
        num_steps: int = 5,
        embedding_scale: float = 1.0,
        step_noises: torch.Tensor | list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The style diffusion sampler (ADPM2, Karras schedule) around the exported denoiser."""
        noise = noise.reshape(1, 1, 2 * self.style_dim).float()
        features = (ref_s.float(),) if self.multispeaker else ()
        fixed = self.run("fixed_embedding", bert_dur)[0] if embedding_scale != 1.0 else None

        def net(x: torch.Tensor, time: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
            return self.run("denoiser", x, time, embedding, *features)[0]

        def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
            sigmas = torch.full((1,), float(sigma), dtype=x.dtype)
            c_skip, c_out, c_in, c_noise = edm_scalings(sigmas, self.sigma_data)
            x_in = c_in * x
            out = net(x_in, c_noise, bert_dur)
            if fixed is not None:  # classifier-free guidance, as the PyTorch denoiser applies it
                out_uncond = net(x_in, c_noise, fixed)
                out = out_uncond + (out - out_uncond) * embedding_scale
            return c_skip * x + c_out * out

        sigmas = KarrasSchedule(SIGMA_MIN, SIGMA_MAX, RHO)(num_steps)
        x = ADPM2Sampler()(noise, denoise, sigmas, num_steps, step_noises=step_noises)
        return x.squeeze(1)

    # -- synthesis --------------------------------------------------------------------------------
    def infer_tokens(
        self,
        tokens: torch.Tensor,
        ref_s: torch.Tensor | None,
        alpha: float = 0.3,
        beta: float = 0.7,
        diffusion_steps: int = 5,
        embedding_scale: float = 1.0,
        noise: torch.Tensor | None = None,
        step_noises: torch.Tensor | list[torch.Tensor] | None = None,
        deterministic: bool = False,
        draws: SourceDraws | None = None,
        timings: dict[str, float] | None = None,
        speed: float = 1.0,
    ) -> SynthesisResult:
        """:func:`tts_adapt.models.styletts2.inference.infer_tokens` on the exported graphs.

        Draws missing noise from torch's RNG in the PyTorch model's order; ``draws`` fixes the
        decoder source's phases and noise (``deterministic`` zeroes them), as in
        ``model.decoder(..., draws=draws)``.
        """
        sd = self.style_dim
        tokens = tokens.long().reshape(1, -1)
        with _stage(timings, "text_encoder"):
            t_en = self.run("text_encoder", tokens)[0]
        with _stage(timings, "bert"):
            bert_dur, d_en = self.run("bert", tokens)
        if not self.has_module("diffusion"):
            if ref_s is None:
                raise ValueError("a model without a style sampler needs a style (a voice pack row) to speak")
            s_pred = ref_s.float()
            ref, s = s_pred[:, :sd], s_pred[:, sd:]
        else:
            with _stage(timings, "diffusion_sampler"):
                if noise is None:
                    noise = torch.randn((1, 2 * sd)).unsqueeze(1)
                if step_noises is None and diffusion_steps > 1:
                    # one draw per step like the sampler (one large draw would give other numbers)
                    step_noises = [torch.randn(1, 1, 2 * sd) for _ in range(diffusion_steps - 1)]
                s_pred = self.sample_style(
                    noise, bert_dur, ref_s, diffusion_steps, embedding_scale, step_noises
                )
            if ref_s is None:
                ref, s = s_pred[:, :sd], s_pred[:, sd:]
            else:
                ref = alpha * s_pred[:, :sd] + (1 - alpha) * ref_s[:, :sd]
                s = beta * s_pred[:, sd:] + (1 - beta) * ref_s[:, sd:]
        with _stage(timings, "predictor"):
            d, durations = self.run("duration", d_en, s)
            if speed != 1.0:
                durations = durations / speed
            pred_dur = torch.round(durations.squeeze(0)).clamp(min=1)
            aln = alignment_from_durations(pred_dur).to(d)
            en = d.transpose(-1, -2) @ aln.unsqueeze(0)
            asr = t_en @ aln.unsqueeze(0)
            if self.decoder_type == "hifigan":
                en, asr = shift_right(en), shift_right(asr)
            F0, N = self.run("f0n", en, s)
        with _stage(timings, "decoder"):
            excitation = self.excitation(F0, deterministic, draws)
            wave = self.run("decoder", asr, F0, N, ref, excitation)[0]
        trim = trim_samples(self.config)
        wave = wave.squeeze()[..., :-trim] if trim else wave.squeeze()
        return SynthesisResult(wave, s_pred, ref, s, durations, pred_dur, aln, F0, N)

    def synthesize(
        self,
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
        """English text (or IPA ``phonemes``) -> ``(float32 wave, sample_rate)``; same seed, same audio.
        Long texts are spoken in pieces, as :func:`tts_adapt.models.styletts2.inference.synthesize` does."""
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        pieces = self.frontend.pieces(None if phonemes is not None else text, phonemes)
        if reference is None and not self.multispeaker and not self.uses_voice_packs:
            style = None
        else:
            style = self.style_from_reference(reference)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            wave = speak_pieces(
                pieces,
                style,
                self.frontend,
                lambda tokens, ref_s: self.infer_tokens(
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
        return wave, self.sample_rate
