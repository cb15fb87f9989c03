"""Corpora: readers, preparation and caching, training batches, a synthetic corpus, and downloads.

Typical use::

    utts = load_corpus("LibriTTS/train-clean-100")           # or VCTK, LJSpeech, a folder, a file list
    utts = random_subset(utts, 1000, seed=0)
    prepared = prepare_corpus(utts, report_path="run/data_report.jsonl")
    dataset = TTSDataset(prepared.items, seed=0)
    sampler = FrameBudgetBatchSampler(dataset.frame_lengths, max_frames=4000, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

# imported on first use: reading a file list needs no torch
_EXPORTS = {
    "BadInputError": "report",
    "Batch": "dataset",
    "FeatureCache": "cache",
    "FeatureSettings": "cache",
    "FrameBudgetBatchSampler": "sampler",
    "LAYOUTS": "corpus",
    "PrepareConfig": "prepare",
    "PreparedCorpus": "prepare",
    "PreparedUtterance": "prepare",
    "REF_FRAMES": "dataset",
    "RandomBatchSampler": "sampler",
    "SkipReport": "report",
    "TTSDataset": "dataset",
    "Utterance": "utterance",
    "by_speaker": "selection",
    "collate": "dataset",
    "detect_layout": "corpus",
    "encode_phonemes": "dataset",
    "filter_duration": "selection",
    "hash_file": "cache",
    "load_corpus": "corpus",
    "load_features": "cache",
    "per_speaker_subset": "selection",
    "prepare_corpus": "prepare",
    "random_subset": "selection",
    "read_filelist": "filelist",
    "read_folder": "readers",
    "read_libritts": "readers",
    "read_ljspeech": "readers",
    "read_vctk": "readers",
    "select_speakers": "selection",
    "sort_utterances": "utterance",
    "speakers_of": "selection",
    "split_speakers": "selection",
    "write_filelist": "filelist",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
