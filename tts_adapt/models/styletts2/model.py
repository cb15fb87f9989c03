"""The StyleTTS 2 container: the thirteen official modules under their official names."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from . import config as C
from .aligner import ASRCNN
from .decoder import HARMONIC_KEYS, Decoder
from .diffusion import build_diffusion
from .discriminators import MultiPeriodDiscriminator, MultiResSpecDiscriminator, WavLMDiscriminator
from .jdc import JDCNet
from .layers import AdainResBlk1d
from .plbert import PLBert
from .prosody import ProsodyPredictor
from .style_encoder import StyleEncoder
from .text_encoder import TextEncoder
from .voice_bank import VoiceBank

MODULE_NAMES = (
    "bert",
    "bert_encoder",
    "predictor",
    "decoder",
    "text_encoder",
    "predictor_encoder",
    "style_encoder",
    "diffusion",
    "text_aligner",
    "pitch_extractor",
    "mpd",
    "msd",
    "wd",
)
# Modules only needed for training (losses, alignment targets), not for synthesis.
TRAINING_ONLY = ("text_aligner", "pitch_extractor", "mpd", "msd", "wd")
# What synthesis needs; a checkpoint for inference may lack the training-only modules.
INFERENCE_MODULES = tuple(n for n in MODULE_NAMES if n not in TRAINING_ONLY)
# The modules a voice-pack model carries (Kokoro-82M): its styles are looked up, not encoded or sampled.
VOICE_PACK_MODULES = ("bert", "bert_encoder", "predictor", "decoder", "text_encoder")


def configured_modules(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The modules a config builds: ``model_params.modules`` (in the official order), else all thirteen."""
    listed = cfg["model_params"].get("modules")
    if listed is None:
        return MODULE_NAMES
    unknown = sorted(set(listed) - set(MODULE_NAMES))
    if unknown:
        raise ValueError(
            f"model_params.modules names unknown module(s) {', '.join(unknown)}; "
            f"known: {', '.join(MODULE_NAMES)}"
        )
    missing = sorted(set(VOICE_PACK_MODULES) - set(listed))
    if missing:
        raise ValueError(
            f"model_params.modules must include the synthesis modules; missing {', '.join(missing)}"
        )
    if ("style_encoder" in listed) != ("predictor_encoder" in listed):
        raise ValueError("model_params.modules: style_encoder and predictor_encoder come together")
    if any(n in listed for n in ("diffusion", *TRAINING_ONLY)) and "style_encoder" not in listed:
        raise ValueError("model_params.modules: the sampler and training modules need the style encoders")
    return tuple(n for n in MODULE_NAMES if n in listed)


class StyleTTS2(nn.Module):
    """StyleTTS 2 networks; ``state_dict()`` keys are ``<module>.<official key>``.

    A config builds all thirteen official modules, or the subset it lists in ``model_params.modules``:
    Kokoro-82M is the five synthesis modules alone, its styles coming from voice packs instead of the
    style encoders and the diffusion sampler. ``module_names`` says which ones this model has.

    Inference helpers live in :mod:`.inference`; they are exposed here as methods so that
    ``model.synthesize(...)`` reads naturally.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        cfg = C.load_config(config)
        self.config = cfg
        mp = cfg["model_params"]
        self.style_dim = int(mp["style_dim"])
        self.sample_rate = C.sample_rate(cfg)
        dec = dict(mp["decoder"])
        self.decoder_type = dec.get("type", "hifigan")
        plbert_cfg = C.plbert_params(cfg)
        self.module_names = configured_modules(cfg)
        has = set(self.module_names)

        self.bert = PLBert(plbert_cfg)
        hidden_bert = self.bert.config.hidden_size
        self.bert_encoder = nn.Linear(hidden_bert, mp["hidden_dim"])
        self.predictor = ProsodyPredictor(
            style_dim=mp["style_dim"],
            d_hid=mp["hidden_dim"],
            nlayers=mp["n_layer"],
            max_dur=mp.get("max_dur", 50),
            dropout=mp.get("dropout", 0.2),
        )
        self.decoder = Decoder(
            dim_in=mp["hidden_dim"],
            style_dim=mp["style_dim"],
            resblock_kernel_sizes=dec["resblock_kernel_sizes"],
            upsample_rates=dec["upsample_rates"],
            upsample_initial_channel=dec["upsample_initial_channel"],
            resblock_dilation_sizes=dec["resblock_dilation_sizes"],
            upsample_kernel_sizes=dec["upsample_kernel_sizes"],
            type=self.decoder_type,
            gen_istft_n_fft=dec.get("gen_istft_n_fft"),
            gen_istft_hop_size=dec.get("gen_istft_hop_size"),
            sampling_rate=self.sample_rate,
            block_channels=dec.get("block_channels", 1024),
            text_residual_channels=dec.get("text_residual_channels", 64),
            harmonic={k: dec[k] for k in HARMONIC_KEYS if k in dec},
        )
        self.text_encoder = TextEncoder(
            channels=mp["hidden_dim"],
            kernel_size=mp.get("text_encoder_kernel_size", 5),
            depth=mp["n_layer"],
            n_symbols=mp["n_token"],
        )
        self.multispeaker = bool(mp.get("multispeaker", True))
        if "style_encoder" in has:
            self._build_style_and_training_modules(mp, hidden_bert, has)
        else:  # a voice-pack model: its voices are a module of their own (see voice_bank)
            packs = C.voice_pack_file(cfg)
            self.voices = VoiceBank.from_file(packs) if packs is not None else VoiceBank()
        self._apply_numerics(mp)

    def _apply_numerics(self, mp: dict[str, Any]) -> None:
        """Two rounding conventions in which Kokoro's code departs from the official StyleTTS 2 code.

        Both change only the last bit of some values, but the decoder integrates F0 into a phase and feeds
        the source's STFT phase to the network, so last-bit differences grow into audible ones; with
        them, our modules reproduce Kokoro's reference modules bit for bit
        (tests/models/test_kokoro_reference.py).
        """
        scaling = mp.get("residual_scaling", "divide_sqrt2")
        if scaling not in ("divide_sqrt2", "multiply_rsqrt2"):
            raise ValueError(
                f"model_params.residual_scaling must be 'divide_sqrt2' or 'multiply_rsqrt2', got {scaling!r}"
            )
        if scaling == "multiply_rsqrt2":
            for m in self.modules():
                if isinstance(m, AdainResBlk1d):
                    m.multiply_rsqrt2 = True
        window = mp["decoder"].get("window_dtype", "float64")
        if window not in ("float64", "float32"):
            raise ValueError(
                f"model_params.decoder.window_dtype must be 'float64' or 'float32', got {window!r}"
            )
        if window == "float32":
            stft = getattr(self.decoder.generator, "stft", None)
            if stft is None:
                raise ValueError("model_params.decoder.window_dtype applies to the istftnet decoder only")
            stft.use_float32_window()

    def _build_style_and_training_modules(self, mp: dict[str, Any], hidden_bert: int, has: set[str]) -> None:
        """The style encoders, the sampler and the training-only modules, each when the config lists it."""
        # Official quirk: both style encoders cap their width at hidden_dim, not max_conv_dim.
        cfg = self.config
        self.predictor_encoder = StyleEncoder(
            dim_in=mp["dim_in"], style_dim=mp["style_dim"], max_conv_dim=mp["hidden_dim"]
        )
        self.style_encoder = StyleEncoder(
            dim_in=mp["dim_in"], style_dim=mp["style_dim"], max_conv_dim=mp["hidden_dim"]
        )
        if "diffusion" in has:
            diff = mp["diffusion"]
            self.diffusion = build_diffusion(
                style_dim=mp["style_dim"],
                bert_hidden=hidden_bert,
                bert_max_positions=self.bert.config.max_position_embeddings,
                transformer=dict(diff["transformer"]),
                dist=dict(diff["dist"]),
                embedding_mask_proba=diff.get("embedding_mask_proba", 0.1),
                multispeaker=self.multispeaker,
            )
        if "text_aligner" in has:
            self.text_aligner = ASRCNN(**C.asr_params(cfg))
        if "pitch_extractor" in has:
            self.pitch_extractor = JDCNet(**C.jdc_params(cfg))
        if "mpd" in has:
            self.mpd = MultiPeriodDiscriminator(channels=mp.get("mpd_channels", (32, 128, 512, 1024)))
        if "msd" in has:
            self.msd = MultiResSpecDiscriminator(channels=mp.get("msd_channels", 32))
        if "wd" in has:
            slm = mp["slm"]
            self.wd = WavLMDiscriminator(slm["hidden"], slm["nlayers"], slm["initial_channel"])

    def has_module(self, name: str) -> bool:
        return name in self.module_names

    @property
    def uses_voice_packs(self) -> bool:
        """Styles come from voice packs (Kokoro): no style encoder to compute one from a recording."""
        return not self.has_module("style_encoder")

    # -- style -------------------------------------------------------------------------------------
    def compute_style(self, mel: torch.Tensor) -> torch.Tensor:
        """Reference log-mel ``[B, 80, T]`` -> ``ref_s [B, 2*style_dim]`` = [acoustic, prosodic]."""
        if self.uses_voice_packs:
            raise ValueError(
                "this model has no style encoder: it speaks with voice packs (--voice NAME or a pack file), "
                "not in the voice of a reference recording"
            )
        x = mel.unsqueeze(1)
        return torch.cat([self.style_encoder(x), self.predictor_encoder(x)], dim=1)

    def sample_style(
        self,
        noise: torch.Tensor,
        bert_dur: torch.Tensor,
        ref_s: torch.Tensor | None,
        num_steps: int = 5,
        embedding_scale: float = 1.0,
        step_noises: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Style diffusion sampler -> ``[B, 2*style_dim]``; per-step noise from torch's RNG unless given.

        ``ref_s`` conditions a multi-speaker model on the reference speaker; a single-speaker model
        ignores it.
        """
        if not self.has_module("diffusion"):
            raise ValueError("this model has no style diffusion sampler (it speaks with voice packs)")
        if noise.dim() == 2:
            noise = noise.unsqueeze(1)
        out = self.diffusion.sample(
            noise=noise,
            embedding=bert_dur,
            features=ref_s if self.multispeaker else None,
            num_steps=num_steps,
            embedding_scale=embedding_scale,
            step_noises=step_noises,
        )
        return out.squeeze(1)

    # -- inference ---------------------------------------------------------------------------------
    def synthesize(self, text: str, reference: Any = None, **kwargs: Any) -> tuple[Any, int]:
        from .inference import synthesize

        return synthesize(self, text, reference=reference, **kwargs)

    def modules_by_name(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in self.module_names}


def set_uniform_durations(model: StyleTTS2, frames_per_token: float) -> None:
    """Make the duration head predict ``frames_per_token`` frames (25 ms each) for every token.

    Random weights otherwise predict about 25 frames per token (sigmoid(random) summed over 50 bins):
    a minute of audio per sentence. A random-weight model meant for benchmarks or smoke runs speaks
    at a natural rate with about 3 (≈ 13 symbols per second).
    """
    proj = model.predictor.duration_proj.linear_layer
    p = frames_per_token / proj.out_features
    if not 0 < p < 1:
        raise ValueError(f"frames_per_token must be in (0, {proj.out_features}), got {frames_per_token}")
    with torch.no_grad():
        proj.weight.zero_()
        proj.bias.fill_(math.log(p / (1 - p)))


def build_model(config: str | os.PathLike | dict[str, Any]) -> StyleTTS2:
    """A randomly initialised StyleTTS 2 from an official-format config (path or dict)."""
    return StyleTTS2(C.load_config(config))
