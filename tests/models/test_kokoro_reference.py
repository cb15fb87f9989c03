"""Kokoro-82M through our modules against Kokoro's own reference code (PyPI ``kokoro`` 0.9.4, KModel).

The reference's modules are built with random weights (fixed seed) and saved in the layout of the
official ``kokoro-v1_0.pth`` (``{module: {"module." + key: tensor}}``); KModel and our loader both read
that file. For the same tokens, style and random draws the two must give the same durations and the same
waveform. The reference is a test-only dependency installed without its requirements (they pull a second
phonemizer); importing only its model files, not its package ``__init__`` (which imports the G2P), keeps
it that way.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types

import pytest
import torch

from tts_adapt.models.styletts2 import load_official
from tts_adapt.models.styletts2.config import KOKORO_CONFIG, load_config
from tts_adapt.models.styletts2.inference import infer_tokens

from ..conftest import missing_input

KOKORO_JSON = {  # the sizes of Kokoro-82M v1.0's config.json (the vocabulary is checked separately below)
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
    "dim_in": 64,
    "dropout": 0.2,
    "hidden_dim": 512,
    "max_conv_dim": 512,
    "max_dur": 50,
    "multispeaker": True,
    "n_layer": 3,
    "n_mels": 80,
    "n_token": 178,
    "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
}


def _reference():
    """Kokoro's ``model``, ``modules`` and ``istftnet`` files without running its package ``__init__``."""
    spec = importlib.util.find_spec("kokoro")
    if spec is None or spec.submodule_search_locations is None:
        missing_input(
            "the reference package 'kokoro' (0.9.4) is not installed (pip install --no-deps kokoro)"
        )
    if "kokoro" not in sys.modules or not hasattr(sys.modules["kokoro"], "__path__"):
        pkg = types.ModuleType("kokoro")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["kokoro"] = pkg
    return importlib.import_module("kokoro.model")


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory):
    kmodel = _reference()
    from kokoro.istftnet import Decoder
    from kokoro.modules import CustomAlbert, ProsodyPredictor, TextEncoder
    from transformers import AlbertConfig

    vocab = load_config(KOKORO_CONFIG)["text"]["vocab"]
    cfg = {**KOKORO_JSON, "vocab": vocab}
    torch.manual_seed(0)
    mods = {
        "bert": CustomAlbert(AlbertConfig(vocab_size=cfg["n_token"], **cfg["plbert"])),
        "bert_encoder": torch.nn.Linear(cfg["plbert"]["hidden_size"], cfg["hidden_dim"]),
        "predictor": ProsodyPredictor(
            style_dim=cfg["style_dim"], d_hid=cfg["hidden_dim"], nlayers=cfg["n_layer"],
            max_dur=cfg["max_dur"], dropout=cfg["dropout"],
        ),
        "text_encoder": TextEncoder(
            channels=cfg["hidden_dim"], kernel_size=5, depth=cfg["n_layer"], n_symbols=cfg["n_token"]
        ),
        "decoder": Decoder(
            dim_in=cfg["hidden_dim"], style_dim=cfg["style_dim"], dim_out=cfg["n_mels"], **cfg["istftnet"]
        ),
    }  # fmt: skip
    with torch.no_grad():  # random weights saturate every duration at max_dur / 2; spread them out
        proj = mods["predictor"].duration_proj.linear_layer
        proj.weight.mul_(10.0)
        proj.bias.fill_(-3.0)
    folder = tmp_path_factory.mktemp("kokoro-reference")
    path = folder / "kokoro-v1_0.pth"
    torch.save({k: {"module." + n: v for n, v in m.state_dict().items()} for k, m in mods.items()}, path)
    (folder / "config.json").write_text(json.dumps(cfg))
    reference = kmodel.KModel(repo_id="hexgrad/Kokoro-82M", config=cfg, model=str(path)).eval()
    return reference, path, folder / "config.json"


@pytest.mark.parametrize("config", [pytest.param("json", marks=pytest.mark.slow), "shipped"])
def test_same_durations_and_waveform_as_the_reference(reference_checkpoint, config):
    reference, path, config_json = reference_checkpoint
    ours = load_official(path, config_json if config == "json" else KOKORO_CONFIG).eval()
    ids = torch.tensor([[0, 50, 83, 54, 157, 57, 16, 102, 62, 4, 16, 65, 86, 54, 0]])
    ref_s = torch.randn(1, 256, generator=torch.Generator().manual_seed(3)) * 0.3
    for speed in (1.0, 1.3):
        torch.manual_seed(7)  # the decoder's source draws random phases and noise: same seed, same draws
        want, want_dur = reference.forward_with_tokens(ids, ref_s, speed)
        torch.manual_seed(7)
        with torch.no_grad():
            got = infer_tokens(ours, ids, ref_s, speed=speed)
        assert got.pred_dur.long().tolist() == want_dur.tolist()
        assert len(set(want_dur.tolist())) > 3  # the durations really vary
        assert got.wave.shape == want.shape
        # measured: 0.0 (bit for bit), with Kokoro's two rounding conventions in the config
        assert float((got.wave - want).abs().max()) <= 1e-5


def test_official_rounding_conventions_are_what_makes_it_exact(reference_checkpoint):
    """Without Kokoro's float32 window and rsqrt scaling the decoder's phase drifts: the config keys
    are load-bearing, not decoration."""
    reference, path, _ = reference_checkpoint
    cfg = load_config(KOKORO_CONFIG)
    cfg["model_params"]["residual_scaling"] = "divide_sqrt2"
    cfg["model_params"]["decoder"]["window_dtype"] = "float64"
    ours = load_official(path, cfg).eval()
    ids = torch.tensor([[0, 50, 83, 54, 157, 57, 16, 102, 62, 4, 0]])
    ref_s = torch.randn(1, 256, generator=torch.Generator().manual_seed(3)) * 0.3
    torch.manual_seed(1)
    want, _ = reference.forward_with_tokens(ids, ref_s, 1.0)
    torch.manual_seed(1)
    with torch.no_grad():
        got = infer_tokens(ours, ids, ref_s)
    assert float((got.wave - want).abs().max()) > 1e-4


def test_shipped_config_matches_kokoro_json():
    """Our assets/kokoro/config.yml is Kokoro's config.json read by our converter (sizes and vocabulary)."""
    shipped = load_config(KOKORO_CONFIG)
    converted = load_config({**KOKORO_JSON, "vocab": shipped["text"]["vocab"]})
    for section in ("model_params", "plbert_model_params", "text", "inference", "preprocess_params"):
        assert shipped[section] == converted[section], section
    vocab = shipped["text"]["vocab"]
    assert len(vocab) == 114 and max(vocab.values()) == 177 and min(vocab.values()) == 1
    assert vocab["ɹ"] == 123 and vocab["ˈ"] == 156 and vocab[" "] == 16  # spot checks against config.json
