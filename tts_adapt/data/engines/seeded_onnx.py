"""Make a sampling ONNX graph reproducible: its random draws come from inputs we fill from a seed.

A VITS voice (Piper) draws Gaussian noise inside the graph (``RandomNormalLike``: the stochastic
duration predictor's noise and the prior sample). onnxruntime seeds such nodes once per session, so
the same sentence comes out differently on every call and depends on what was synthesised before it.
Here each ``RandomNormalLike(x)`` becomes ``reshape(noise_k[:size(x)], shape(x)) * scale + mean``
with ``noise_k`` a new 1-D graph input: given the same noise, the same sentence gives the same audio,
whatever ran before and in whichever thread. Draws are standard normal as before, so the voice's
sound is unchanged in distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOISE_INPUT = "tts_adapt_noise_{}"


def seed_random_nodes(model) -> list[str]:
    """Rewrite every ``RandomNormalLike`` of ``model`` (an ``onnx.ModelProto``, in place); return the
    names of the noise inputs added, in graph order."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    new_nodes = []
    inputs: list[str] = []
    one = "tts_adapt_noise_shape_1"
    zero = "tts_adapt_noise_start_0"
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            raise ValueError(
                f"{node.name}: only float32 RandomNormalLike can be seeded, got dtype {attrs['dtype']}"
            )
        k = len(inputs)
        noise = NOISE_INPUT.format(k)
        inputs.append(noise)
        graph.input.append(helper.make_tensor_value_info(noise, TensorProto.FLOAT, [f"noise_{k}_length"]))
        like, out = node.input[0], node.output[0]
        p = f"tts_adapt_noise_{k}_"
        mean, scale = float(attrs.get("mean", 0.0)), float(attrs.get("scale", 1.0))
        plain = mean == 0.0 and scale == 1.0
        steps = [  # (op, inputs, output); node names carry the prefix so that errors can be told apart
            ("Shape", [like], p + "shape"),
            ("Size", [like], p + "size"),
            ("Reshape", [p + "size", one], p + "end"),
            ("Slice", [noise, zero, p + "end"], p + "flat"),
            ("Reshape", [p + "flat", p + "shape"], out if plain else p + "std"),
        ]
        if not plain:
            steps += [
                ("Mul", [p + "std", p + "scale"], p + "scaled"),
                ("Add", [p + "scaled", p + "mean"], out),
            ]
            graph.initializer.append(onnx.numpy_helper.from_array(np.float32(scale), p + "scale"))
            graph.initializer.append(onnx.numpy_helper.from_array(np.float32(mean), p + "mean"))
        new_nodes += [
            helper.make_node(op, ins, [o], name=f"{p}{i}_{op}") for i, (op, ins, o) in enumerate(steps)
        ]
    if inputs:
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), one))
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), zero))
        del graph.node[:]
        graph.node.extend(new_nodes)
    return inputs


def noise_banks(names: Sequence[str], length: int, seed: Sequence[int]) -> dict[str, np.ndarray]:
    """Standard normal noise for each input, ``length`` draws from the stream ``(*seed, k)``.

    A longer bank starts with the same draws as a shorter one, so growing it (when a sentence needs
    more) does not change the result."""
    return {
        name: np.random.default_rng([*seed, k]).standard_normal(length, dtype=np.float32)
        for k, name in enumerate(names)
    }
