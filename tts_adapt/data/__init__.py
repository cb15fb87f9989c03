"""Corpora: readers, preparation and caching, training batches, a synthetic corpus, and downloads.

Typical use::

    utts = load_corpus("LibriTTS/train-clean-100")           # or VCTK, LJSpeech, a folder, a file list
    utts = random_subset(utts, 1000, seed=0)
    prepared = prepare_corpus(utts, report_path="run/data_report.jsonl")
    dataset = TTSDataset(prepared.items, seed=0)
    sampler = FrameBudgetBatchSampler(dataset.frame_lengths, max_frames=4000, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
"""

from .cache import FeatureCache, FeatureSettings, hash_file, load_features
from .corpus import LAYOUTS, detect_layout, load_corpus
from .dataset import REF_FRAMES, Batch, TTSDataset, collate, encode_phonemes
from .filelist import read_filelist, write_filelist
from .prepare import PrepareConfig, PreparedCorpus, PreparedUtterance, prepare_corpus
from .readers import read_folder, read_libritts, read_ljspeech, read_vctk
from .report import BadInputError, SkipReport
from .sampler import FrameBudgetBatchSampler, RandomBatchSampler
from .selection import (
    by_speaker,
    filter_duration,
    per_speaker_subset,
    random_subset,
    select_speakers,
    speakers_of,
    split_speakers,
)
from .utterance import Utterance, sort_utterances

__all__ = [
    "LAYOUTS",
    "REF_FRAMES",
    "BadInputError",
    "Batch",
    "FeatureCache",
    "FeatureSettings",
    "FrameBudgetBatchSampler",
    "PrepareConfig",
    "PreparedCorpus",
    "PreparedUtterance",
    "RandomBatchSampler",
    "SkipReport",
    "TTSDataset",
    "Utterance",
    "by_speaker",
    "collate",
    "detect_layout",
    "encode_phonemes",
    "filter_duration",
    "hash_file",
    "load_corpus",
    "load_features",
    "per_speaker_subset",
    "prepare_corpus",
    "random_subset",
    "read_filelist",
    "read_folder",
    "read_libritts",
    "read_ljspeech",
    "read_vctk",
    "select_speakers",
    "sort_utterances",
    "speakers_of",
    "split_speakers",
    "write_filelist",
]
