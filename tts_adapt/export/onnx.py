"""Export the StyleTTS 2 inference path as ONNX graphs, one per network, plus a manifest and the config.

The graphs are the networks; the glue between them stays in Python (:mod:`.onnx_runtime`): the
diffusion sampler loop, classifier-free guidance, duration rounding and the hard alignment, because
they are a few lines each and keeping them in Python keeps the graphs free of data-dependent shapes.

Graphs (batch 1, text and audio lengths dynamic):

=================  ===============================================  =====================================
file               inputs                                           outputs
=================  ===============================================  =====================================
style              mel ``[1, 80, M]``                               ref_s ``[1, 2S]``
text_encoder       tokens ``[1, T]`` int64                          t_en ``[1, C, T]``
bert               tokens                                           bert_dur ``[1, T, H]``, d_en ``[1, C, T]``
denoiser           x ``[1, 1, 2S]``, time ``[1]``, embedding         x_pred ``[1, 1, 2S]`` (the raw network;
                   ``[1, T, H]`` (, features ``[1, 2S]``)           EDM preconditioning is Python glue)
fixed_embedding    embedding ``[1, T, H]``                          fixed ``[1, T, H]`` (unconditional text)
duration           d_en, s ``[1, S]``                               d ``[1, T, C+S]``, durations ``[1, T]``
f0n                en ``[1, C+S, F]``, s                            F0, N ``[1, 2F]``
decoder            asr ``[1, C, F]``, F0, N, ref ``[1, S]``,         wave ``[1, 1, samples]``
                   excitation ``[1, samples, 9]``
=================  ===============================================  =====================================

The decoder's sine generator (the NSF source before its learned mixing layer) has no weights and
stays in Python: it integrates F0 into phases of thousands of radians in float32, where one rounding
step of ONNX's Resize or CumSum (which accumulates in float32, torch's in float64) already moves the
phase by 1e-3 rad. Running the package's own ``SineGen`` on the graph's F0 keeps the excitation, with
its random phases and noise, exactly PyTorch's.
Weight and spectral norms are folded into plain weights before tracing (their hooks would otherwise be
traced as ops).
All sequences of one utterance are full length, so the LSTMs run unpacked, as PyTorch runs them then.

A voice-pack model (Kokoro) has no style encoder and no sampler: its export has no ``style``,
``denoiser`` or ``fixed_embedding`` graph, and carries its voice packs beside the config instead.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..models.styletts2.config import voice_pack_file
from ..models.styletts2.istftnet import ISTFT
from ..models.styletts2.model import StyleTTS2
from ..utils.io import write_json, write_text

log = logging.getLogger(__name__)

OPSET = 17
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.yml"
GRAPH_ORDER = (
    "style",
    "text_encoder",
    "bert",
    "denoiser",
    "fixed_embedding",
    "duration",
    "f0n",
    "decoder",
)
# graphs that exist only when the model has the module that computes them
GRAPH_MODULES = {"style": "style_encoder", "denoiser": "diffusion", "fixed_embedding": "diffusion"}
VOICE_PACKS = "voices.safetensors"


def graphs_of(model: StyleTTS2) -> tuple[str, ...]:
    """The graphs an export of ``model`` holds, in :data:`GRAPH_ORDER`."""
    return tuple(g for g in GRAPH_ORDER if model.has_module(GRAPH_MODULES.get(g, "decoder")))


class _Style(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.m = m

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.m.compute_style(mel)


class _TextEncoder(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.enc = m.text_encoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.enc(tokens, None, torch.zeros_like(tokens, dtype=torch.bool))


class _Bert(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.bert, self.proj = m.bert, m.bert_encoder

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bert_dur = self.bert(tokens, attention_mask=torch.ones_like(tokens))
        return bert_dur, self.proj(bert_dur).transpose(-1, -2)


class _Denoiser(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.net = m.diffusion.unet
        self.multispeaker = m.multispeaker

    def forward(self, x: torch.Tensor, time: torch.Tensor, embedding: torch.Tensor, *features: torch.Tensor):
        if self.multispeaker:
            return self.net.run(x, time, embedding, features[0])
        return self.net.run(x, time, embedding)


class _FixedEmbedding(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.fixed = m.diffusion.unet.fixed_embedding

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        length = embedding.shape[1]
        table = self.fixed.embedding(torch.arange(length, device=embedding.device))
        return table.unsqueeze(0).to(embedding.dtype)


class _Duration(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.p = m.predictor

    def forward(self, d_en: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.zeros(d_en.shape[0], d_en.shape[2], dtype=torch.bool, device=d_en.device)
        d = self.p.text_encoder(d_en, s, None, mask)
        return d, self.p.durations(d)


class _F0N(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.p = m.predictor

    def forward(self, en: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p.F0Ntrain(en, s)


class _GivenExcitation(nn.Module):
    """Stands in for the sine generator: returns the excitation given to the graph as input."""

    def __init__(self) -> None:
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, f0: torch.Tensor, *args: Any) -> tuple[torch.Tensor, torch.Tensor, None]:
        return self.value, self.value[..., :1], None


class _GivenHarmonics(nn.Module):
    """Stands in for the harmonic decoder's source: returns the excitation given to the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, f0: torch.Tensor, *args: Any) -> torch.Tensor:
        return self.value


class _Decoder(nn.Module):
    def __init__(self, m: StyleTTS2) -> None:
        super().__init__()
        self.dec = m.decoder
        self.harmonic = m.decoder_type == "harmonic"
        if self.harmonic:
            self.dec.generator.source = _GivenHarmonics()
        else:
            self.dec.generator.m_source.l_sin_gen = _GivenExcitation()

    def forward(self, asr, F0, N, ref, excitation) -> torch.Tensor:  # noqa: N803 (official names)
        if self.harmonic:
            self.dec.generator.source.value = excitation
        else:
            self.dec.generator.m_source.l_sin_gen.value = excitation
        return self.dec(asr, F0, N, ref, deterministic=True)


def fold_norms(model: nn.Module) -> nn.Module:
    """Replace every (hook-based) weight and spectral norm by the plain weight it computes now, in place
    (spectral norm with its stored vectors, as in eval mode)."""
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, WeightNorm):
                    nn.utils.remove_weight_norm(module, hook.name)
                elif isinstance(hook, SpectralNorm):
                    nn.utils.remove_spectral_norm(module, hook.name)
    return model


def _copy(model: StyleTTS2) -> StyleTTS2:
    """A float32 CPU copy in eval mode (``deepcopy`` fails on weight-normalised modules)."""
    m = StyleTTS2(model.config)
    m.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    if model.has_module("diffusion"):
        m.diffusion.sigma_data = model.diffusion.sigma_data
    return m.eval()


def real_stfts(model: nn.Module) -> nn.Module:
    """Replace every complex-valued :class:`ISTFT` (iSTFTNet decoders) by its real-valued twin, in place:
    ONNX has no complex tensors. The result is the PyTorch model the exported graphs compute exactly;
    against the complex original it differs at rounding level (see ``real_stft``)."""
    from .real_stft import RealISTFT

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, ISTFT):
                setattr(module, name, RealISTFT(child.n_fft, child.hop_length, child.window))
    return model


def _examples(model: StyleTTS2, text_len: int = 12, frames: int = 20) -> dict[str, tuple]:
    """Example inputs for tracing (their values do not matter; their shapes are made dynamic)."""
    mp = model.config["model_params"]
    sd, hidden = model.style_dim, int(mp["hidden_dim"])
    bert_hidden = model.bert.config.hidden_size
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, int(mp["n_token"]), (1, text_len), generator=g)
    samples = 2 * frames * model.decoder.generator.hop
    x = {
        "style": (torch.randn(1, 80, 100, generator=g),),
        "text_encoder": (tokens,),
        "bert": (tokens,),
        "denoiser": (
            torch.randn(1, 1, 2 * sd, generator=g),
            torch.tensor([0.1]),
            torch.randn(1, text_len, bert_hidden, generator=g),
        )
        + ((torch.randn(1, 2 * sd, generator=g),) if model.multispeaker else ()),
        "fixed_embedding": (torch.randn(1, text_len, bert_hidden, generator=g),),
        "duration": (torch.randn(1, hidden, text_len, generator=g), torch.randn(1, sd, generator=g)),
        "f0n": (torch.randn(1, hidden + sd, frames, generator=g), torch.randn(1, sd, generator=g)),
        "decoder": (
            torch.randn(1, hidden, frames, generator=g),
            100 + 50 * torch.rand(1, 2 * frames, generator=g),
            torch.randn(1, 2 * frames, generator=g),
            torch.randn(1, sd, generator=g),
            0.1 * torch.randn(1, samples, 9, generator=g)
            if model.decoder_type != "harmonic"
            else torch.randn(1, model.decoder.generator.n_harmonics + 1, samples, generator=g),
        ),
    }
    return x


# (input names, output names, dynamic axes) per graph
def _signatures(model: StyleTTS2) -> dict[str, tuple[list[str], list[str], dict[str, dict[int, str]]]]:
    T, F, M = "text", "frames", "mel_frames"  # noqa: N806
    denoiser_in = ["x", "time", "embedding"] + (["features"] if model.multispeaker else [])
    return {
        "style": (["mel"], ["ref_s"], {"mel": {2: M}}),
        "text_encoder": (["tokens"], ["t_en"], {"tokens": {1: T}, "t_en": {2: T}}),
        "bert": (
            ["tokens"],
            ["bert_dur", "d_en"],
            {"tokens": {1: T}, "bert_dur": {1: T}, "d_en": {2: T}},
        ),
        "denoiser": (denoiser_in, ["x_pred"], {"embedding": {1: T}}),
        "fixed_embedding": (["embedding"], ["fixed"], {"embedding": {1: T}, "fixed": {1: T}}),
        "duration": (
            ["d_en", "s"],
            ["d", "durations"],
            {"d_en": {2: T}, "d": {1: T}, "durations": {1: T}},
        ),
        "f0n": (["en", "s"], ["F0", "N"], {"en": {2: F}, "F0": {1: "f0_frames"}, "N": {1: "f0_frames"}}),
        "decoder": (
            ["asr", "F0", "N", "ref", "excitation"],
            ["wave"],
            {
                "asr": {2: F},
                "F0": {1: "f0_frames"},
                "N": {1: "f0_frames"},
                "excitation": {2 if model.decoder_type == "harmonic" else 1: "samples"},
                "wave": {2: "samples"},
            },
        ),
    }


_WRAPPERS = {
    "style": _Style,
    "text_encoder": _TextEncoder,
    "bert": _Bert,
    "denoiser": _Denoiser,
    "fixed_embedding": _FixedEmbedding,
    "duration": _Duration,
    "f0n": _F0N,
    "decoder": _Decoder,
}


def _plain_config(model: StyleTTS2) -> dict[str, Any]:
    """The model's config without private keys, with the sigma_data the model actually uses."""
    cfg = {k: v for k, v in copy.deepcopy(model.config).items() if not str(k).startswith("_")}
    if model.has_module("diffusion"):
        cfg["model_params"]["diffusion"]["dist"]["sigma_data"] = float(model.diffusion.sigma_data)
    if cfg.get("voice_packs"):
        cfg["voice_packs"] = VOICE_PACKS  # copied into the export folder
    return cfg


def _sine_params(m: StyleTTS2) -> dict[str, float | int]:
    """What the runtime needs to rebuild the (weightless) sine generator of the decoder's source
    (for the harmonic decoder: its :class:`HarmonicSource`)."""
    if m.decoder_type == "harmonic":
        src = m.decoder.generator.source
        return {"sampling_rate": src.sampling_rate, "hop": src.hop, "n_harmonics": src.n_harmonics}
    sg = m.decoder.generator.m_source.l_sin_gen
    return {
        "sampling_rate": sg.sampling_rate,
        "upsample_scale": sg.upsample_scale,
        "harmonic_num": sg.harmonic_num,
        "sine_amp": sg.sine_amp,
        "noise_std": sg.noise_std,
        "voiced_threshold": sg.voiced_threshold,
    }


def _versions() -> dict[str, str]:
    import onnx

    out = {"torch": torch.__version__, "onnx": onnx.__version__}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # exporting does not need the runtime
        pass
    return out


def export_onnx(model: StyleTTS2, out_dir: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the inference graphs of ``model`` (already merged, if adapted) to ``out_dir``.

    The folder is built beside ``out_dir`` and renamed into place at the end, so a failed export
    leaves no half-written folder; an existing ``out_dir`` must be an earlier export (it is replaced).
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as e:
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'tts-adapt[onnx]'") from e
    from ..adapters.lora import lora_layers

    if lora_layers(model):
        raise ValueError("merge the LoRA adapters before exporting (tts_adapt.adapters.merge_lora)")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ValueError(f"{out} exists and is not an ONNX export (no {MANIFEST}); choose an empty folder")
    m = real_stfts(fold_norms(_copy(model)))
    examples, signatures, sine = _examples(m), _signatures(m), _sine_params(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would survive the rename
    try:
        graphs = {}
        for name in graphs_of(m):
            inputs, outputs, axes = signatures[name]
            path = tmp / f"{name}.onnx"
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer notes about constant shapes of unused branches
                torch.onnx.export(
                    _WRAPPERS[name](m).eval(),
                    examples[name],
                    str(path),
                    input_names=inputs,
                    output_names=outputs,
                    dynamic_axes=axes,
                    opset_version=opset,
                    dynamo=False,
                )
            graphs[name] = {"file": path.name, "inputs": inputs, "outputs": outputs}
        write_text(tmp / CONFIG, yaml.safe_dump(_plain_config(m), sort_keys=False, allow_unicode=True))
        packs = voice_pack_file(model.config)
        if packs is not None:
            shutil.copyfile(packs, tmp / VOICE_PACKS)
        manifest = {
            "format": "tts-adapt-onnx",
            "format_version": FORMAT_VERSION,
            "opset": opset,
            "versions": _versions(),
            "sample_rate": m.sample_rate,
            "style_dim": m.style_dim,
            "multispeaker": m.multispeaker,
            "decoder_type": m.decoder_type,
            "samples_per_f0_frame": m.decoder.generator.hop,
            "sine_generator": sine,
            "sigma_data": float(m.diffusion.sigma_data) if m.has_module("diffusion") else None,
            "max_tokens": m.bert.config.max_position_embeddings,
            "graphs": graphs,
        }
        write_json(tmp / MANIFEST, manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("wrote ONNX graphs to %s", out)
    return out
