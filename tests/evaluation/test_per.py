"""PER: decoding and scoring units, official-format loading, and a real recogniser trained here."""

import contextlib
import math

import numpy as np
import pytest
import torch

from tts_adapt.alignment.recognizer import OFFICIAL_CONFIG, build_aligner, ctc_greedy_decode
from tts_adapt.evaluation.audio_io import load_wave
from tts_adapt.evaluation.degrade import add_noise, garble
from tts_adapt.evaluation.per import PhonemeRecognizer, phone_units, phoneme_error_rate

from .conftest import needs_espeak


def test_phone_units_drop_spaces_punctuation_and_stress():
    assert phone_units("ðə kwˈɪk , fˈɑːks .") == list("ðəkwɪkfɑːks")
    assert phoneme_error_rate("ðə kˈæt", "ðəkæt") == 0.0
    assert phoneme_error_rate("ab", "a") == 0.5
    with pytest.raises(ValueError):
        phoneme_error_rate(" , ", "a")


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks():
    ids = [0, 5, 5, 0, 5, 7, 7, 0, 0]
    logits = torch.nn.functional.one_hot(torch.tensor(ids), 10).float()
    assert ctc_greedy_decode(logits) == [5, 5, 7]


def test_official_checkpoint_format_loads_strictly(tmp_path):
    """A state dict saved as the official Utils/ASR checkpoint ({'model': ...}) gives the same logits."""
    torch.manual_seed(0)
    model = build_aligner(OFFICIAL_CONFIG).eval()
    path = tmp_path / "epoch_00080.pth"
    torch.save({"model": model.state_dict()}, path)
    rec = PhonemeRecognizer.load(path)
    wave = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    torch.testing.assert_close(rec.logits(wave), PhonemeRecognizer(model).logits(wave))
    assert rec.logits(wave).shape == (math.ceil((24000 // 300 + 1) / 2), 178)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        PhonemeRecognizer.load(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="train-per"):
        PhonemeRecognizer.load(tmp_path / "absent.pth")


@contextlib.contextmanager
def one_thread():
    """Small convolutions train several times faster on one thread than on two busy, shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _corpus(root, n, seed):
    from tts_adapt.data.sentences import make_sentences
    from tts_adapt.text import Phonemizer

    from .conftest import VOICE_A, VOICE_B, speak

    texts = [norm for _, norm in make_sentences(n, seed)]
    ipa = Phonemizer().phonemize(texts)
    return [
        (speak(root / f"u{i}.wav", t, VOICE_A if i % 2 else VOICE_B), p)
        for i, (t, p) in enumerate(zip(texts, ipa))
    ]


@pytest.fixture(scope="module")
def tiny_recognizer(tmp_path_factory):
    """A small CTC recogniser fitted in about 30 s (one thread) to 24 espeak-ng utterances."""
    from tts_adapt.evaluation.per_train import PERTrainConfig, train_per_recognizer

    root = tmp_path_factory.mktemp("per")
    items = _corpus(root, 24, seed=11)
    cfg = PERTrainConfig(
        hidden_dim=64,
        n_layers=2,
        token_embedding_dim=16,
        epochs=60,
        batch_size=2,
        lr=3e-3,
        val_fraction=0.0,
        spec_augment=False,
    )
    with one_thread():
        rec, summary = train_per_recognizer(items, root / "rec", cfg, progress=False)
    return rec, items, summary, root


@pytest.mark.slow
@needs_espeak
def test_per_rises_as_audio_is_degraded(tiny_recognizer):
    rec, items, _, _ = tiny_recognizer
    clean, noisy, very_noisy, garbled = [], [], [], []
    for path, ipa in items[:8]:
        w = load_wave(path, 24000)
        clean.append(rec.per(path, ipa)["per"])
        noisy.append(rec.per((add_noise(w, 10, seed=0), 24000), ipa)["per"])
        very_noisy.append(rec.per((add_noise(w, -5, seed=0), 24000), ipa)["per"])
        garbled.append(rec.per((garble(w, 24000, seed=0), 24000), ipa)["per"])
    assert np.mean(clean) < 0.5
    assert np.mean(clean) < np.mean(noisy) < np.mean(very_noisy)
    assert np.mean(garbled) > np.mean(clean) + 0.2


@pytest.mark.slow
@needs_espeak
def test_trained_recognizer_reloads_and_resumes(tiny_recognizer):
    from tts_adapt.evaluation.per_train import PERTrainConfig, train_per_recognizer

    rec, items, summary, root = tiny_recognizer
    again = PhonemeRecognizer.load(root / "rec" / "recognizer.safetensors")
    path, ipa = items[0]
    assert again.recognize([path]) == rec.recognize([path])
    # rerunning with the same settings resumes at the last epoch instead of training again
    cfg = PERTrainConfig(**summary["train_config"])
    _, resumed = train_per_recognizer(items, root / "rec", cfg, progress=False)
    assert resumed["history"] == summary["history"]


@pytest.mark.slow
@needs_espeak
def test_recognizer_generalises_to_unseen_sentences(tmp_path):
    """About 2 minutes on one core: 180 training sentences, PER measured on 20 sentences never trained on."""
    from tts_adapt.evaluation.per_train import PERTrainConfig, train_per_recognizer

    items = _corpus(tmp_path, 200, seed=5)
    cfg = PERTrainConfig(hidden_dim=96, n_layers=2, epochs=40, batch_size=8, lr=3e-3, val_fraction=0.1)
    with one_thread():
        rec, summary = train_per_recognizer(items, tmp_path / "rec", cfg, progress=False)
    assert summary["val_per"] < 0.1  # measured: 0.01
    held = [(p, i) for p, i in items if str(p) in set(summary["val_ids"])]
    pers = [rec.per(p, i)["per"] for p, i in held]
    noisy = [rec.per((add_noise(load_wave(p, 24000), 5, seed=0), 24000), i)["per"] for p, i in held]
    assert np.mean(pers) < 0.1
    assert np.mean(pers) < np.mean(noisy)
