"""The Gradio demo: models load, every system speaks, and the served page answers a real request."""

from __future__ import annotations

import importlib.util
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.models.styletts2 import build_model, save_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.train import TrainConfig, run_adaptation

from ..conftest import REPO, kokoro_voice_run

gradio = pytest.importorskip("gradio")


def load_app_module():
    spec = importlib.util.spec_from_file_location("demo_app", REPO / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextmanager
def served(app):
    """The Gradio app on a free loopback port; yields its URL and closes it afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


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
    # known references are labelled by speaker, a few recordings each; the folder holds ref's speaker
    assert ref.resolve() in {p.resolve() for p in voices.references.values()}
    assert all(k.startswith("speaker ") for k in voices.references)
    out = voices.speak("Hello there.", str(ref), steps=3, seed=1)
    assert set(out) == {"base", "lora (lora)"}
    for sr, wave in out.values():
        assert sr == 24000 and wave.ndim == 1 and np.isfinite(wave).all() and len(wave) > 1000
    again = voices.speak("Hello there.", str(ref), steps=3, seed=1)
    assert np.array_equal(again["base"][1], out["base"][1])
    with pytest.raises(ValueError, match="type some text"):
        voices.speak("  ", str(ref))
    with pytest.raises(ValueError, match="2,001 characters"):
        voices.speak("a" * 2001, str(ref))


@pytest.mark.parametrize("adapted", [True, False], ids=["base+adapted", "base alone"])
def test_served_app_answers(setup, adapted):
    """Through Gradio's own client; the base model alone once failed every request (one output)."""
    app_module = load_app_module()
    ckpt, folder, ref = setup
    voices = app_module.Voices.load(str(ckpt), str(MICRO_CONFIG), [str(folder)] if adapted else [], [])
    with served(app_module.build_app(voices)) as url:
        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)
        result = client.predict("Hi.", handle_file(str(ref)), None, 0.3, 0.7, 3, 1.0, 0, api_name="/run")
        files = list(result) if adapted else [result]
        assert len(files) == (2 if adapted else 1)
        for path in files:
            audio, sr = sf.read(path)
            assert sr == 24000 and len(audio) > 1000


def test_bad_references_are_named(tmp_path):
    app = load_app_module()
    notes = tmp_path / "notes.wav"
    notes.write_text("words, not sound\n" * 10)
    with pytest.raises(ValueError, match=r"notes.wav is not a recording .*\(\w+") as info:
        app.check_reference(notes)
    assert not str(info.value).endswith("()")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(61 * 8000, dtype=np.int16), 8000)
    with pytest.raises(ValueError, match="lasts 61 s; at most 60 s"):
        app.check_reference(long)
    big = tmp_path / "big.wav"  # 55 s, 48 kHz stereo float32: 21.1 MB
    sf.write(big, np.zeros((55 * 48000, 2), dtype=np.float32), 48000, subtype="FLOAT")
    with pytest.raises(ValueError, match="21.1 MB; at most 20 MB"):
        app.check_reference(big)
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.zeros(2 * 8000, dtype=np.int16), 8000)
    app.check_reference(ok)


def test_references_labelled_by_speaker(synthetic_corpus, tmp_path):
    app = load_app_module()
    speakers = sorted(d.name for d in (synthetic_corpus / "train-synth").iterdir())
    labels = app.label_references([str(synthetic_corpus)], per_speaker=2)
    assert f"speaker {speakers[0]} (1)" in labels and f"speaker {speakers[0]} (2)" in labels
    assert f"speaker {speakers[0]} (3)" not in labels
    assert all(labels[f"speaker {s} (1)"].parts[-3] == s for s in speakers)  # LibriTTS <spk>/<chapter>/
    # recordings without transcripts, a lone VCTK-style file, and a name given on the command line
    plain = tmp_path / "my_voice"
    plain.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(plain / name, np.zeros(8000, dtype=np.int16), 8000)
    vctk = tmp_path / "p248"
    vctk.mkdir()
    sf.write(vctk / "p248_001.wav", np.zeros(8000, dtype=np.int16), 8000)
    labels = app.label_references([str(plain), str(vctk / "p248_001.wav"), f"target={plain / 'a.wav'}"])
    assert labels == {
        "speaker my_voice (1)": plain / "a.wav",
        "speaker my_voice (2)": plain / "b.wav",
        "speaker p248": vctk / "p248_001.wav",
        "target": plain / "a.wav",
    }
    with pytest.raises(FileNotFoundError, match="missing"):
        app.label_references([str(tmp_path / "missing")])


def test_model_paths(tmp_path, monkeypatch, capsys):
    app = load_app_module()
    import tts_adapt.models.registry as registry
    from tts_adapt.models.styletts2.default import default_model_paths

    assert app.main(["--model", "nobody"]) == 2
    assert "demo: error: unknown --model 'nobody'" in capsys.readouterr().err
    ckpt = tmp_path / "m.pth"
    with pytest.raises(ValueError, match="no config.yml beside the checkpoint"):
        app.resolve_model(str(ckpt), None)
    (tmp_path / "config.yml").write_text("{}")
    assert app.resolve_model(str(ckpt), None) == (ckpt, tmp_path / "config.yml")
    with pytest.raises(ValueError, match="--model names a model; drop --checkpoint"):
        app.resolve_model(str(ckpt), None, "kokoro")
    shipped = tuple(Path(p) for p in default_model_paths())
    assert app.resolve_model(None, None, "tts-adapt-base") == shipped
    # without arguments, the registry's default model
    monkeypatch.setattr(registry, "default_model_name", lambda: registry.BASE)
    assert app.resolve_model(None, None) == shipped


def test_shipped_voices_are_the_default_references(setup):
    """Started without --references, the page offers the voices shipped with the base model, by name and
    kind, one of them already chosen; Speak then works without an upload."""
    from tts_adapt.models.styletts2.shipped_voices import shipped_voices

    app_module = load_app_module()
    ckpt, _, _ = setup
    shipped = shipped_voices()
    voices = app_module.Voices.load(str(ckpt), str(MICRO_CONFIG), [], [])
    assert voices.references == {f"{v.name} ({v.accent}, {v.gender})": v.path for v in shipped.values()}
    label = next(iter(voices.references))
    with served(app_module.build_app(voices)) as url:
        from gradio_client import Client

        client = Client(url, verbose=False)
        path = client.predict("Hi.", None, label, 0.3, 0.7, 3, 1.0, 0, api_name="/run")
        audio, sr = sf.read(path, dtype="int16")
        assert sr == 24000 and len(audio) > 1000
        # the chosen label's recording, as if it had been uploaded
        direct = voices.speak("Hi.", str(shipped[label.split(" ")[0]].path), 0.3, 0.7, 3, 1.0, 0)["base"][1]
        expected = app_module.to_pcm16(direct).astype(int)
        assert len(audio) == len(expected) and np.abs(audio.astype(int) - expected).max() <= 1


def test_kokoro_offers_its_voices_by_name(kokoro_paths):
    """With Kokoro the page offers its 28 English voices by name, accent and sex, speaks the chosen one,
    and a blend; a reference recording is refused with a message saying why."""
    app_module = load_app_module()
    voices = app_module.Voices.load(str(kokoro_paths[0]), str(kokoro_paths[1]), [], [])
    assert voices.voice_packs and len(voices.references) == 28
    assert voices.references["af_heart (US English, female)"] == "af_heart"
    assert voices.references["bm_george (British English, male)"] == "bm_george"
    assert app_module.title(voices)[0] == "Kokoro-82M's voices"
    assert app_module.output_label(voices, "base") == "base: Kokoro-82M"
    heart = voices.speak("Hello there.", "af_heart", seed=0)["base"]
    george = voices.speak("Hello there.", "bm_george", seed=0)["base"]
    blend = voices.speak("Hello there.", "af_heart:0.5,bm_george:0.5", seed=0)["base"]
    for sr, wave in (heart, george, blend):
        assert sr == 24000 and 0.4 * sr < len(wave) < 3 * sr and np.abs(wave).max() > 0.05
    assert not np.array_equal(heart[1][: len(george[1])], george[1][: len(heart[1])])
    with pytest.raises(ValueError, match="unknown voice 'nobody'"):
        voices.speak("Hello there.", "nobody")
    with pytest.raises(ValueError, match="voice packs, not reference recordings"):
        app_module.Voices.load(str(kokoro_paths[0]), str(kokoro_paths[1]), [], ["some_recordings/"])


def test_kokoro_new_voice_beside_the_voice_it_started_from(kokoro_paths, tmp_path):
    """With an adapted Kokoro folder the page offers its learned voice first; for it the base speaks the
    stock voice the voice started from (the manifest's voice_init), the adapted model its new voice; a
    stock voice is spoken by both (a voice-method folder moved no weight: the same clip, bit for bit)."""
    app_module = load_app_module()
    _, model = kokoro_voice_run(kokoro_paths, tmp_path / "run", name="joe")
    voices = app_module.Voices.load(str(kokoro_paths[0]), str(kokoro_paths[1]), [str(tmp_path / "run")], [])
    first_label, first_voice = next(iter(voices.references.items()))
    assert first_voice == "joe" and "am_michael" in first_label and len(voices.references) == 29
    said = voices.speak("Hello there.", "joe", seed=3)
    base_michael, _ = model.synthesize("Hello there.", reference="am_michael", seed=3)
    new_voice, _ = model.synthesize("Hello there.", reference="joe", seed=3)
    assert np.array_equal(said["base"][1], base_michael)
    assert np.array_equal(said["run (voice)"][1], new_voice)
    assert not np.array_equal(new_voice[: len(base_michael)], base_michael[: len(new_voice)])
    stock = voices.speak("Hello there.", "bf_emma", seed=3)
    assert np.array_equal(stock["base"][1], stock["run (voice)"][1])
