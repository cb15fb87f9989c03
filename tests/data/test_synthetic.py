"""The synthetic corpus: layout, stability under a seed, resumption, and distinct speakers."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import soundfile as sf
import torch

from tts_adapt.data import load_corpus, read_libritts
from tts_adapt.data.sentences import make_sentences, spell_number
from tts_adapt.data.synthetic import make_corpus

pytestmark = pytest.mark.espeak


def digest(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_metadata(synthetic_corpus):
    utts = read_libritts(synthetic_corpus)
    assert len(utts) == 30 and len({u.speaker for u in utts}) == 6
    u = utts[0]
    assert u.audio_path.parent.parent.parent.name == "train-synth"
    assert u.id == f"{u.speaker}_1_000000_000000"
    info = sf.info(str(u.audio_path))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    assert 1.0 < u.duration < 15.0
    original = u.audio_path.with_name(u.id + ".original.txt").read_text(encoding="utf-8").strip()
    assert original and u.text and not any(c.isdigit() for c in u.text)
    meta = json.loads((synthetic_corpus / "speakers.json").read_text(encoding="utf-8"))
    assert meta["complete"] and len(meta["voices"]) == 6
    voices = {(v["accent"], v["variant"], v["pitch"], v["speed"]) for v in meta["voices"]}
    assert len(voices) == 6 and len({v["variant"] for v in meta["voices"]}) == 6
    tsv = u.audio_path.parent / f"{u.speaker}_1.trans.tsv"
    assert len(tsv.read_text(encoding="utf-8").splitlines()) == 5
    assert len({u.text for u in utts}) == 30  # every sentence differs


def test_same_seed_same_corpus_and_resume(tmp_path):
    a = make_corpus(tmp_path / "a", 2, 2, seed=1, progress=False)
    b = make_corpus(tmp_path / "b", 2, 2, seed=1, progress=False)
    assert digest(a) == digest(b)
    c = make_corpus(tmp_path / "c", 2, 2, seed=2, progress=False)
    assert digest(c) != digest(a)
    before = digest(a)
    victim = next(a.rglob("*.wav"))
    victim.unlink()
    make_corpus(a, 2, 2, seed=1, progress=False)  # resumes: only the missing file is written
    assert digest(a) == before
    with pytest.raises(ValueError, match="overwrite"):
        make_corpus(a, 3, 2, seed=1, progress=False)
    make_corpus(a, 3, 1, seed=1, test_speakers=1, progress=False, overwrite=True)
    assert {u.speaker for u in read_libritts(a, subsets=["test-synth"])} == {"9002"}
    assert len(read_libritts(a, subsets=["train-synth"])) == 2
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        make_corpus(tmp_path / "d", 2, 2, progress=False)
    with pytest.raises(ValueError, match="test_speakers"):
        make_corpus(tmp_path / "e", 2, 2, test_speakers=2, progress=False)


def test_sentences():
    pairs = make_sentences(200, 0)
    assert len({n for _, n in pairs}) == 200 and pairs == make_sentences(200, 0)
    assert any(any(ch.isdigit() for ch in o) for o, _ in pairs)
    assert not any(any(ch.isdigit() for ch in n) for _, n in pairs)
    assert len({w for _, n in pairs for w in n.lower().split()}) > 150
    assert spell_number(342) == "three hundred and forty two" and spell_number(70) == "seventy"
    assert " a o" not in " ".join(n for _, n in pairs)


@pytest.fixture
def one_thread():
    """Resemblyzer runs many tiny LSTM steps; on a shared CPU extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_speakers_are_separable_in_resemblyzer_space(synthetic_corpus, one_thread):
    pytest.importorskip("resemblyzer")
    from tts_adapt.data.separability import corpus_separability

    result = corpus_separability(load_corpus(synthetic_corpus), progress=False)
    assert result["within_mean"] > result["between_mean"] + 0.1
    assert result["nearest_centroid_accuracy"] >= 0.9


@pytest.mark.slow
def test_full_size_separability(tmp_path, one_thread):
    """24 speakers x 10 utterances: the figure reported in docs/data.md."""
    pytest.importorskip("resemblyzer")
    from tts_adapt.data.separability import corpus_separability

    root = make_corpus(tmp_path / "c", 24, 10, seed=0, progress=False)
    result = corpus_separability(load_corpus(root), progress=False)
    print(json.dumps(result, indent=2))
    assert result["within_mean"] > result["between_mean"] + 0.2
    assert result["nearest_centroid_accuracy"] >= 0.95
    shutil.rmtree(root)
