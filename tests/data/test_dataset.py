"""TTSDataset + collate follow the official StyleTTS 2 training-data semantics and are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_adapt.audio import log_mel
from tts_adapt.data import REF_FRAMES, Batch, FrameBudgetBatchSampler, TTSDataset, collate, load_features
from tts_adapt.text.symbols import SYMBOL_TO_ID


def test_sample_semantics(prepared_synthetic):
    ds = TTSDataset(prepared_synthetic.items, seed=0)
    for i in (0, 7):
        item = prepared_synthetic[i]
        s = ds[i]
        raw = sf.read(item.utterance.audio_path, dtype="float32")[0]  # the corpus is written at 24 kHz
        padded = np.concatenate([np.zeros(5000, np.float32), raw, np.zeros(5000, np.float32)])
        assert torch.equal(s["wave"], torch.from_numpy(padded))
        mel = log_mel(padded)[0]
        even = mel.shape[1] - mel.shape[1] % 2
        assert s["mel"].shape == (80, even) and torch.allclose(s["mel"], mel[:, :even], atol=1e-5)
        ids = s["tokens"].tolist()
        assert ids[0] == 0 and ids[-1] == 0
        assert ids[1:-1] == [SYMBOL_TO_ID[c] for c in item.phonemes if c in SYMBOL_TO_ID]
        ref = next(p for p in prepared_synthetic if p.id == s["ref_id"])
        assert ref.speaker == item.speaker
        full_ref = load_features(ref.features)[1]
        assert s["ref_mel"].shape[1] == min(REF_FRAMES, full_ref.shape[1])
        windows = [
            full_ref[:, k : k + s["ref_mel"].shape[1]]
            for k in range(full_ref.shape[1] - s["ref_mel"].shape[1])
        ]
        assert any(torch.equal(w, s["ref_mel"]) for w in windows)  # a crop of the uncut reference mel


def test_references_come_from_the_same_speaker_and_vary_with_epoch(prepared_synthetic):
    ds = TTSDataset(prepared_synthetic.items, seed=0)
    refs_by_epoch = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        refs = [ds[i]["ref_id"] for i in range(len(ds))]
        assert all(r.split("_")[0] == p.speaker for r, p in zip(refs, prepared_synthetic))
        refs_by_epoch.append(refs)
    assert len({tuple(r) for r in refs_by_epoch}) > 1
    single = TTSDataset(prepared_synthetic.items, multispeaker=False)
    assert all(single[i]["ref_id"] == single[i]["id"] for i in range(3))


def test_deterministic_under_a_seed(prepared_synthetic):
    a, b, c = (TTSDataset(prepared_synthetic.items, seed=s) for s in (5, 5, 6))
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert sa["ref_id"] == sb["ref_id"] and torch.equal(sa["ref_mel"], sb["ref_mel"])
    assert [a[i]["ref_id"] for i in range(len(a))] != [c[i]["ref_id"] for i in range(len(c))] or not all(
        torch.equal(a[i]["ref_mel"], c[i]["ref_mel"]) for i in range(len(a))
    )


def test_collate_pads_masks_and_sorts(prepared_synthetic):
    ds = TTSDataset(prepared_synthetic.items, seed=0)
    samples = [ds[i] for i in (3, 0, 11, 20)]
    batch = collate(samples)
    assert isinstance(batch, Batch) and len(batch) == 4
    assert batch.mel_lengths.tolist() == sorted(batch.mel_lengths.tolist(), reverse=True)
    order = [next(s for s in samples if s["id"] == i) for i in batch.ids]
    for k, s in enumerate(order):
        n, t, w = s["tokens"].numel(), s["mel"].shape[1], s["wave"].numel()
        assert batch.token_lengths[k] == n and batch.mel_lengths[k] == t and batch.wave_lengths[k] == w
        assert torch.equal(batch.tokens[k, :n], s["tokens"]) and not batch.tokens[k, n:].any()
        assert torch.equal(batch.mels[k, :, :t], s["mel"]) and not batch.mels[k, :, t:].any()
        assert torch.equal(batch.waves[k, :w], s["wave"])
        assert batch.text_mask[k].tolist() == [j >= n for j in range(batch.tokens.shape[1])]
        assert batch.mel_mask[k].tolist() == [j >= t for j in range(batch.mels.shape[2])]
        assert batch.speakers[k] == s["speaker"] and batch.speaker_ids[k] == ds.speaker_map[s["speaker"]]
    assert batch.ref_mels.shape == (4, 80, REF_FRAMES)
    assert batch.tokens.dtype == torch.long and batch.text_mask.dtype == torch.bool
    assert batch.ood_tokens is None
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.ids == batch.ids and torch.equal(moved.mels, batch.mels)


def test_dataloader_with_frame_budget_sampler(prepared_synthetic):
    ds = TTSDataset(prepared_synthetic.items, seed=0)
    sampler = FrameBudgetBatchSampler(ds.frame_lengths, max_frames=1500, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    seen = []
    for batch in loader:
        assert batch.mels.shape[0] * batch.mels.shape[2] <= 1500
        seen += batch.ids
    assert sorted(seen) == sorted(p.id for p in prepared_synthetic)


def test_out_of_distribution_texts(prepared_synthetic):
    long_text = "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ, ænd ɹˈʌnz ɐwˈeɪ"
    ds = TTSDataset(prepared_synthetic.items, ood_phonemes=["tˈuː ʃˈɔːɹt", long_text])
    batch = collate([ds[0], ds[1]])
    assert batch.ood_tokens.shape[0] == 2
    assert batch.ood_token_lengths.tolist() == [len(long_text) + 2] * 2
    with pytest.raises(ValueError, match="at least 50"):
        TTSDataset(prepared_synthetic.items, ood_phonemes=["ʃˈɔːɹt"])


def test_speaker_map(prepared_synthetic):
    speakers = sorted({p.speaker for p in prepared_synthetic})
    ds = TTSDataset(prepared_synthetic.items)
    assert ds.speaker_map == {s: i for i, s in enumerate(speakers)}
    custom = {s: 100 + i for i, s in enumerate(speakers)}
    assert TTSDataset(prepared_synthetic.items, speaker_map=custom)[0]["speaker_id"] >= 100
    with pytest.raises(ValueError, match="speaker_map"):
        TTSDataset(prepared_synthetic.items, speaker_map={speakers[0]: 0})
    with pytest.raises(ValueError, match="at least one"):
        TTSDataset([])
