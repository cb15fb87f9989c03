"""Kokoro-82M's int8 ONNX export -> float weights under our state-dict keys.

The export (kokoro-onnx's ``kokoro-v1.0.int8.onnx``) was optimised and dynamically quantised by
onnxruntime, so no weight keeps its torch name reliably: many are anonymous (``onnx::MatMul_6559``) and
identical zero points are shared between layers. What does carry the module path is the *node* that
consumes a weight (``/decoder/decoder/generator/noise_res.0/convs1.0/Conv_quant``), so every tensor is
mapped through its consumer:

* ``ConvInteger``: uint8 weight, one scale and zero point per tensor, weight norm already folded in.
  Dequantised as ``(q - zero_point) * scale``; for a weight-normed layer the folded weight becomes
  ``weight_v`` and its norm over all dimensions but the first ``weight_g`` (so ``g · v/‖v‖`` is the
  folded weight again).
* ``MatMulInteger``: int8 ``[in, out]`` with a scale and zero point per output column -> ``[out, in]``.
* ``DynamicQuantizeLSTM``: int8 ``W [dirs, in, 4H]``, ``R [dirs, H, 4H]`` (scale and zero point per
  direction), float ``B [dirs, 8H]``; ONNX gate order i, o, f, c becomes torch's i, f, c(g), o.
* Quantised embeddings: ``Gather`` + ``DequantizeLinear`` (per-tensor scale and zero point).
* Float convolutions and transposed convolutions (generator upsamplers, ``conv_post``, the pooling
  layers) and ``l_linear``'s MatMul: taken as they are (weight norm split as above).
* Biases, norms and Snake ``alpha``: float initializers that still carry their key
  (``decoder.decoder.…``, ``encoder.predictor.…``).
* ALBERT's pooler is not in the graph: Kokoro reads the last hidden state only, so the export dropped
  it. It is set to zeros, which changes no output (and says so in the report).

:func:`convert` returns the float state dict and a report of what was assigned; it refuses a graph in
which a parameter of ours is assigned twice or never, or a weight of the graph is left unassigned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

# The export wraps the model as ``encoder`` (bert, bert_encoder, text_encoder, predictor) and
# ``decoder.decoder`` (the decoder); the predictor's F0/N branches are scoped directly under ``encoder``.
_ENCODER_MODULES = ("bert", "bert_encoder", "text_encoder", "predictor")
_QUANTIZED = "_quantized"
_REPEAT = re.compile(r"^(.*)_(\d+)$")
# ONNX LSTM gates (i, o, f, c) in torch's order (i, f, g=c, o)
_TORCH_GATES = (0, 2, 3, 1)
# Parameters the export leaves out because no output depends on them.
UNUSED_BY_SYNTHESIS = ("bert.pooler.weight", "bert.pooler.bias")
# Fixed (not learned) buffers of the export's real-valued STFT: no parameter of ours.
_FIXED_BUFFERS = ("decoder.decoder.generator.stft.",)


class OnnxMappingError(ValueError):
    """The graph does not map one to one onto the model's parameters."""


@dataclass
class Conversion:
    """The float weights and how they were found: ``sources[key]`` names the graph tensor of each."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def assign(self, key: str, value: np.ndarray, source: str) -> None:
        if key in self.state:
            raise OnnxMappingError(f"{key} is assigned twice: from {self.sources[key]} and from {source}")
        self.state[key] = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
        self.sources[key] = source


def _module_path(node_name: str, modules: set[str]) -> str:
    """``/decoder/decoder/decode.3/pool/ConvTranspose`` -> ``decoder.decode.3.pool``.

    Each scope level is the submodule's name relative to the last module that was *called*, so a
    level may repeat its parent's name (``cnn.0/cnn.0.0``); a module called again inside one forward
    (ALBERT's shared layer, 12 times) gets ``_1``, ``_2``, ... suffixes that name no module.
    """
    parts = [p for p in node_name.split("/") if p][:-1]
    if not parts:
        raise OnnxMappingError(f"node {node_name!r} carries no module scope")
    top, rest = parts[0], parts[1:]
    if top == "decoder":
        module, rest = "decoder", rest[1:] if rest[:1] == ["decoder"] else rest
    elif top == "encoder" and rest and rest[0] in _ENCODER_MODULES:
        module, rest = rest[0], rest[1:]
    elif top == "encoder":
        module = "predictor"
    else:
        raise OnnxMappingError(f"node {node_name!r} is outside the encoder/decoder scopes")
    path: list[str] = []
    for comp in rest:
        if path and comp.startswith(path[-1] + "."):
            path[-1] = comp
            continue
        candidate = ".".join([module, *path, comp])
        if candidate not in modules:
            m = _REPEAT.match(comp)
            if m and ".".join([module, *path, m.group(1)]) in modules:
                comp = m.group(1)
        path.append(comp)
    return ".".join([module, *path])


def _weight_norm_split(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(g, v)`` with ``v = weight`` and ``g = ‖weight‖`` over every dimension but the first.

    Per-tensor int8 rounds every weight of some output channels to zero (52 of 256 in the F0 branch's
    ``F0.2.conv1``): there ``g = 0`` and ``v`` is a unit row, so ``g · v/‖v‖`` is the zero row again
    instead of 0/0.
    """
    axes = tuple(range(1, weight.ndim))
    g = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=axes, keepdims=True)).astype(np.float32)
    dead = (g == 0).reshape(-1)
    if dead.any():
        weight = weight.copy()
        row = int(np.prod(weight.shape[1:]))
        weight[dead] = 1.0 / np.sqrt(row)
    return g, weight


class _Mapper:
    def __init__(self, graph, model: nn.Module) -> None:
        from onnx import numpy_helper

        self.inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        self.params = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        self.modules = {n for n, _ in model.named_modules() if n}
        self.out = Conversion()

    # -- helpers -------------------------------------------------------------------------------------
    def init(self, name: str) -> np.ndarray:
        self.out.used.add(name)
        return self.inits[name]

    def scale_of(self, quantized: str) -> np.ndarray:
        name = quantized[: -len(_QUANTIZED)] + "_scale"
        if name not in self.inits:
            raise OnnxMappingError(f"no scale {name} for the quantised weight {quantized}")
        return self.init(name)

    def set_weight(self, prefix: str, weight: np.ndarray, source: str) -> None:
        """``prefix.weight``, or ``weight_g``/``weight_v`` where the layer is weight-normed."""
        plain, g_key, v_key = f"{prefix}.weight", f"{prefix}.weight_g", f"{prefix}.weight_v"
        if v_key in self.params:
            g, v = _weight_norm_split(weight)
            self._check(v_key, v.shape, source)
            self.out.assign(g_key, g, source)
            self.out.assign(v_key, v, source)
        elif plain in self.params:
            self._check(plain, weight.shape, source)
            self.out.assign(plain, weight, source)
        else:
            raise OnnxMappingError(f"{source} maps to {prefix}, which has no weight in the model")

    def _check(self, key: str, shape: tuple[int, ...], source: str) -> None:
        if tuple(shape) != self.params[key]:
            raise OnnxMappingError(f"{source} -> {key}: shape {tuple(shape)}, model {self.params[key]}")

    # -- node kinds ----------------------------------------------------------------------------------
    def conv_integer(self, node) -> None:
        w, zp = node.input[1], node.input[3]
        q = self.init(w).astype(np.float32)
        weight = (q - self.init(zp).astype(np.float32)) * self.scale_of(w)
        self.set_weight(_module_path(node.name, self.modules), weight, w)

    def matmul_integer(self, node) -> None:
        w, zp = node.input[1], node.input[3]
        if w not in self.inits:
            return  # an activation-by-activation product (none in this export)
        prefix = _module_path(node.name, self.modules)
        key = f"{prefix}.weight"
        q = self.init(w).astype(np.float32)
        weight = ((q - self.init(zp).astype(np.float32)) * self.scale_of(w)).T
        if key in self.out.state:  # ALBERT's shared layer: the same tensor at every one of its calls
            if self.out.sources[key] != w:
                raise OnnxMappingError(f"{key} is fed by {self.out.sources[key]} and by {w}")
            return
        self._check(key, weight.shape, w)
        self.out.assign(key, weight, w)

    def lstm(self, node) -> None:
        prefix = _module_path(node.name, self.modules)
        ins = list(node.input)
        w, r, b = self.init(ins[1]), self.init(ins[2]), self.init(ins[3])
        w_scale, w_zp, r_scale, r_zp = (self.init(n) for n in ins[8:12])
        hidden = r.shape[1]

        def gates(x: np.ndarray) -> np.ndarray:  # [..., 4H] iofc -> [4H, ...] ifco
            chunks = np.split(x, 4, axis=-1)
            return np.concatenate([chunks[i] for i in _TORCH_GATES], axis=-1)

        for d, suffix in enumerate(("", "_reverse")):
            wf = (w[d].astype(np.float32) - np.float32(w_zp[d])) * w_scale[d]
            rf = (r[d].astype(np.float32) - np.float32(r_zp[d])) * r_scale[d]
            wb, rb = b[d][: 4 * hidden], b[d][4 * hidden :]
            for name, value in (
                (f"weight_ih_l0{suffix}", gates(wf).T),
                (f"weight_hh_l0{suffix}", gates(rf).T),
                (f"bias_ih_l0{suffix}", gates(wb)),
                (f"bias_hh_l0{suffix}", gates(rb)),
            ):
                key = f"{prefix}.{name}"
                self._check(key, value.shape, ins[1])
                self.out.assign(key, value, ins[1])

    def embedding(self, gather, dequant) -> None:
        data = gather.input[0]
        q = self.init(data).astype(np.float32)
        scale, zp = self.init(dequant.input[1]), self.init(dequant.input[2]).astype(np.float32)
        prefix = _module_path(gather.name, self.modules)
        key = f"{prefix}.weight"
        value = (q - zp) * scale
        self._check(key, value.shape, data)
        self.out.assign(key, value, data)

    def float_layer(self, node) -> None:
        """Float Conv / ConvTranspose / MatMul with a weight initializer (no quantisation)."""
        w = node.input[1]
        if w not in self.inits:
            return
        prefix = _module_path(node.name, self.modules)
        if not any(k.startswith(prefix + ".weight") for k in self.params):
            return  # not a parameter of ours: the iSTFT's fixed inverse-DFT kernel
        weight = self.init(w)
        if node.op_type == "MatMul":
            weight = weight.T
        self.set_weight(prefix, weight, w)

    def named(self) -> None:
        """Float initializers that still carry their key: biases, norms, ``alpha``."""
        for name, value in self.inits.items():
            if name.endswith(_QUANTIZED) or name.endswith("_scale") or name.endswith("_zero_point"):
                continue
            if name.startswith("decoder.decoder."):
                key = "decoder." + name[len("decoder.decoder.") :]
            elif name.startswith("encoder."):
                key = name[len("encoder.") :]
            else:
                continue
            if key not in self.params:
                continue
            self.used(name)
            self._check(key, value.shape, name)
            self.out.assign(key, value, name)

    def used(self, name: str) -> None:
        self.out.used.add(name)

    def run(self) -> Conversion:
        producers = {o: n for n in self.nodes for o in n.output}
        for node in self.nodes:
            op = node.op_type
            if op == "ConvInteger":
                self.conv_integer(node)
            elif op == "MatMulInteger":
                self.matmul_integer(node)
            elif op == "DynamicQuantizeLSTM":
                self.lstm(node)
            elif op in ("Conv", "ConvTranspose", "MatMul"):
                self.float_layer(node)
            elif op == "DequantizeLinear":
                src = producers.get(node.input[0])
                if src is not None and src.op_type == "Gather" and src.input[0].endswith(_QUANTIZED):
                    self.embedding(src, node)
        self.named()
        for key in UNUSED_BY_SYNTHESIS:
            if key in self.params and key not in self.out.state:
                self.out.assign(key, np.zeros(self.params[key], np.float32), "(not in the graph: unused)")
        return self.out


def weight_initializers(graph) -> list[str]:
    """The graph's weights: quantised tensors and float tensors named by a parameter key."""
    out = []
    for t in graph.initializer:
        n = t.name
        if n.endswith(_QUANTIZED) and "bias" not in n:
            out.append(n)
        elif (n.startswith("encoder.") or n.startswith("decoder.decoder.")) and not n.endswith(
            ("_scale", "_zero_point", "_reshape_shape")
        ):
            if not n.startswith(_FIXED_BUFFERS):
                out.append(n)
    return out


def convert(graph, model: nn.Module) -> Conversion:
    """Map every weight of the int8 graph onto ``model``'s parameters (see the module docstring)."""
    conv = _Mapper(graph, model).run()
    expected = set(model.state_dict())
    missing = sorted(expected - set(conv.state))
    if missing:
        raise OnnxMappingError(f"{len(missing)} parameter(s) found no tensor in the graph: {_first(missing)}")
    unused = sorted(set(weight_initializers(graph)) - conv.used)
    if unused:
        raise OnnxMappingError(f"{len(unused)} weight(s) of the graph map to no parameter: {_first(unused)}")
    return conv


def _first(names: Iterable[str], n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", … ({len(names) - n} more)" if len(names) > n else "")
