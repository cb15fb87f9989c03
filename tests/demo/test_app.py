"""The Gradio demo: models load, every system speaks, and the served page answers a real request."""

from __future__ import annotations

import importlib.util
import socket
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.models.styletts2 import build_model, save_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.train import TrainConfig, run_adaptation

from ..conftest import REPO

gradio = pytest.importorskip("gradio")


def load_app_module():
    spec = importlib.util.spec_from_file_location("demo_app", REPO / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(prepared_synthetic, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    ckpt = save_official(build_model(MICRO_CONFIG), root / "base.pth")
    items = [it for it in prepared_synthetic.items if it.speaker == prepared_synthetic.items[0].speaker][:2]
    cfg = TrainConfig(
        method="lora", steps=1, max_len=80, batch_size=2, save_every=100, sample_every=100, no_slm=True
    )
    run_adaptation(ckpt, MICRO_CONFIG, items, cfg, root / "lora", progress=False, hash_checkpoint=False)
    ref = items[0].utterance.audio_path
    return ckpt, root / "lora", ref


def test_every_system_speaks(setup):
    app = load_app_module()
    ckpt, adapted, ref = setup
    voices = app.Voices.load(str(ckpt), str(MICRO_CONFIG), [str(adapted)], [str(ref.parent)])
    assert list(voices.models) == ["base", "lora (lora)"]
    assert any(ref.name in k for k in voices.references)
    out = voices.speak("Hello there.", str(ref), steps=3, seed=1)
    assert set(out) == {"base", "lora (lora)"}
    for sr, wave in out.values():
        assert sr == 24000 and wave.ndim == 1 and np.isfinite(wave).all() and len(wave) > 1000
    again = voices.speak("Hello there.", str(ref), steps=3, seed=1)
    assert np.array_equal(again["base"][1], out["base"][1])
    with pytest.raises(ValueError, match="type some text"):
        voices.speak("  ", str(ref))


def test_served_app_answers(setup, tmp_path):
    app_module = load_app_module()
    ckpt, adapted, ref = setup
    voices = app_module.Voices.load(str(ckpt), str(MICRO_CONFIG), [str(adapted)], [])
    app = app_module.build_app(voices)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        from gradio_client import Client, handle_file

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict("Hi.", handle_file(str(ref)), None, 0.3, 0.7, 3, 1.0, 0, api_name="/run")
        assert len(result) == 2
        audio, sr = sf.read(result[1])
        assert sr == 24000 and len(audio) > 1000
    finally:
        app.close()
