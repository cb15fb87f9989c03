"""The log-mel front end reproduces the official preprocess(), including the 16 kHz filterbank quirk."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.audio import SAMPLE_RATE, load_audio, log_mel, reference_mel, trim_silence


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return torch.load(fixtures_dir / "checkpoint_set" / "tiny_golden.pt", weights_only=True)


def test_log_mel_matches_official(golden):
    mel = log_mel(golden["ref_wav_trimmed"])
    assert mel.shape == golden["ref_mel"].shape == (1, 80, 1 + 30720 // 300)
    torch.testing.assert_close(mel, golden["ref_mel"], atol=1e-4, rtol=0)
    torch.testing.assert_close(log_mel(golden["ref_wav"]), golden["ref_mel_full"], atol=1e-4, rtol=0)


def test_filterbank_is_the_16k_one(golden):
    """A 6 kHz tone lands in the mel band that a 16 kHz filterbank assigns to 4 kHz (6000 * 16/24)."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    mel = log_mel(np.sin(2 * np.pi * 6000 * t).astype(np.float32))[0].mean(-1)
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=0, fmax=8000, htk=True)[1:-1]
    assert abs(centres[int(mel.argmax())] - 4000) < 150


def test_trim_and_reference(golden, tmp_path):
    trimmed = trim_silence(golden["ref_wav"].numpy())
    assert np.array_equal(trimmed, golden["ref_wav_trimmed"].numpy())
    path = tmp_path / "ref.wav"
    sf.write(path, golden["ref_wav"].numpy(), SAMPLE_RATE, subtype="FLOAT")
    torch.testing.assert_close(reference_mel(path), golden["ref_mel"], atol=1e-4, rtol=0)
    assert load_audio(path).dtype == np.float32


def test_resampling_on_load(tmp_path):
    path = tmp_path / "16k.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    assert load_audio(path).shape == (24000,)


def test_bad_audio_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValueError, match="bad.wav"):
        load_audio(bad)
    text = tmp_path / "notes.txt"
    text.write_text("words, not sound\n")
    with pytest.raises(ValueError, match="notes.txt") as info:
        load_audio(text)
    assert not str(info.value).rstrip().endswith(":"), "the reason after the file name is empty"
    with pytest.raises(ValueError, match="empty"):
        reference_mel(np.zeros(0, dtype=np.float32))
