import numpy as np
import pytest

from tts_adapt.evaluation.audio_io import load_wave
from tts_adapt.evaluation.cache import EmbeddingCache
from tts_adapt.evaluation.similarity import get_speaker_encoder

from .conftest import needs_espeak


@pytest.fixture(scope="module")
def encoder():
    return get_speaker_encoder("resemblyzer")


@needs_espeak
def test_same_speaker_scores_higher_than_different(encoder, voices):
    a, b = voices["A"], voices["B"]
    same = [encoder.similarity(a[i], a[j]) for i in range(3) for j in range(i + 1, 4)]
    diff = [encoder.similarity(a[i], b[j]) for i in range(4) for j in range(4) if i != j]
    assert min(same) > max(diff)
    assert np.mean(same) > 0.8 and np.mean(diff) < 0.75


@needs_espeak
def test_batched_equals_one_by_one_and_cache_hits(voices):
    files = voices["A"][:2] + voices["B"][:2]
    batched = get_speaker_encoder("resemblyzer").embed(files)
    single_enc = get_speaker_encoder("resemblyzer")
    single = np.stack([single_enc.embed([f])[0] for f in files])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    hits = single_enc.cache.hits
    single_enc.embed(files)
    assert single_enc.cache.hits == hits + len(files)
    # the same audio passed as an array hits the same entry (content hash, not path)
    wave = load_wave(files[0], 16000)
    single_enc.embed([(wave, 16000)])
    assert single_enc.cache.hits == hits + len(files) + 1


@needs_espeak
def test_disk_cache_round_trip(tmp_path, voices):
    enc = get_speaker_encoder("resemblyzer", cache=EmbeddingCache(tmp_path))
    first = enc.embed(voices["A"][:1])
    assert list(tmp_path.rglob("*.npy"))
    fresh = get_speaker_encoder("resemblyzer", cache=EmbeddingCache(tmp_path))
    again = fresh.embed(voices["A"][:1])
    assert fresh.cache.hits == 1 and fresh.cache.misses == 0
    np.testing.assert_array_equal(first, again)


def test_wavlm_backend_loads_local_weights(tmp_path):
    """The transformers loading path, on a small randomly initialised WavLMForXVector saved to disk."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    cfg = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        tdnn_dim=(16, 16),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=24,
        num_buckets=8,
        max_bucket_distance=32,
    )
    WavLMForXVector(cfg).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    enc = get_speaker_encoder("wavlm-base-plus-sv", model_path=tmp_path)
    rng = np.random.default_rng(0)
    e = enc.embed(
        [
            (rng.standard_normal(16000).astype(np.float32) * 0.1, 16000),
            (rng.standard_normal(24000).astype(np.float32) * 0.1, 24000),
        ]
    )
    assert e.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_missing_weights_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="wavlm-base-plus-sv"):
        get_speaker_encoder("wavlm-base-plus-sv")
    with pytest.raises((FileNotFoundError, RuntimeError), match="(?i)ecapa|speechbrain"):
        get_speaker_encoder("ecapa", model_path=tmp_path)
    with pytest.raises(ValueError, match="unknown speaker-similarity backend"):
        get_speaker_encoder("nope")


def test_bare_array_is_refused(encoder):
    with pytest.raises(ValueError, match="sample rate"):
        encoder.embed([np.zeros(16000, dtype=np.float32)])
