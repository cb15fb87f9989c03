"""The "Your voice" tab as a person uses it, end to end, in headless Chromium (slow: about 10 minutes).

A real speaker's voice (Piper's en_US-joe-medium, CC0, rendered as twelve clips) is uploaded with bad
files among it; each bad file gets its message and the server keeps answering. The voice-only method
runs to the end: the page plays the new voice, shows its measures and the stock voices, and hands over
the voice pack, which Kokoro's own int8 ONNX graph then speaks and Whisper transcribes. A second
browser sees none of it. A LoRA + KFAC job (curvature estimated on the spot) is cancelled, resumed,
and finishes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts_adapt.cli import main as cli

from .test_browser import expect_message, headless_chromium, keep_screenshot, serve

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 900
SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


@pytest.fixture(scope="module")
def joe_clips(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("joe")
    args = ["make-corpus", "--engine", "piper", "--voice", "en_US-joe-medium", "--utterances", "12"]
    assert cli([*args, "--test-utterances", "0", "--seed", "0", "--out", str(out)]) == 0
    return sorted((out / "train-synth").rglob("*.wav"))


def bad_uploads(folder: Path, good: Path) -> list[Path]:
    """A text file named .wav, a silent clip, a 0.5 s clip and a clipped one."""
    folder.mkdir(parents=True, exist_ok=True)
    notes = folder / "notes.wav"
    notes.write_text("these are words, not sound\n" * 20)
    wave, sr = sf.read(good)
    sf.write(folder / "silent.wav", np.zeros(3 * sr), sr)
    sf.write(folder / "short.wav", wave[: sr // 2], sr)
    sf.write(folder / "clipped.wav", np.clip(wave * 20, -1, 1), sr)
    return [notes, folder / "silent.wav", folder / "short.wav", folder / "clipped.wav"]


def zip_with_texts(clips: list[Path], out: Path) -> Path:
    """The clips with their transcripts beside them, as a person would zip a recording session."""
    with zipfile.ZipFile(out, "w") as z:
        for clip in clips:
            z.write(clip, f"session/{clip.name}")
            text = clip.with_name(clip.name.replace(".wav", ".normalized.txt")).read_text()
            z.writestr(f"session/{clip.stem}.txt", text)
    return out


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def heard(wave: np.ndarray, sr: int) -> list[str]:
    import librosa

    from tts_adapt.evaluation.asr import get_transcriber

    transcriber = get_transcriber("whisper-base")
    return words(transcriber.transcribe_waves([librosa.resample(wave, orig_sr=sr, target_sr=16000)])[0])


def wait_state(page, states: tuple[str, ...], timeout_s: float = JOB_TIMEOUT_S) -> str:
    selector = ", ".join(f'#own-progress-box[data-state="{s}"]' for s in states)
    page.locator(selector).wait_for(timeout=timeout_s * 1000)
    return page.locator("#own-progress-box").get_attribute("data-state")


def check_clips(page, files: list[Path]) -> None:
    page.locator("#own-files input[type=file]").set_input_files([str(f) for f in files])
    page.locator("#own-files").get_by_text(files[-1].stem).first.wait_for()
    page.locator("#own-check").click()


def int8_speaks(pack_bytes: bytes, kokoro_paths) -> tuple[np.ndarray, int]:
    """Kokoro's int8 ONNX graph (kokoro-onnx's export, the one Kokoro's CPU users run) reading
    SENTENCE with the downloaded pack: kokoro-js's layout, the style row indexed by phoneme count."""
    import onnxruntime as ort

    from tts_adapt.models.kokoro import int8_onnx_path
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.models.styletts2.frontend import TextFrontend

    pack = np.frombuffer(pack_bytes, dtype=np.float32).reshape(-1, 1, 256)
    frontend = TextFrontend.for_model(load_official(*kokoro_paths, modules=("bert",)))
    ids = frontend.encode(frontend.phonemize(SENTENCE))
    style = pack[frontend.n_phoneme_tokens(ids)]
    session = ort.InferenceSession(str(int8_onnx_path()), providers=["CPUExecutionProvider"])
    feed = {"tokens": np.array([ids], np.int64), "style": style, "speed": np.ones(1, np.float32)}
    return session.run(None, feed)[0].reshape(-1), 24000


def test_own_voice_made_heard_measured_and_taken_away(kokoro_paths, joe_clips, tmp_path):
    work = tmp_path / "work"
    args = ["--model", "kokoro", "--workdir", str(work), "--curvature-utterances", "1"]
    server = serve(args, tmp_path)
    url, proc = next(server)
    try:
        from playwright.sync_api import expect

        with headless_chromium() as browser:
            mine = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = mine.new_page()
            page.set_default_timeout(300_000)
            page.goto(url, timeout=120_000)
            page.get_by_role("tab", name="Your voice").click()
            page.locator("#own-name input, #own-name textarea").first.fill("joe")

            # 1. three good clips among bad files: each bad one named, too little speech in all
            check_clips(page, [*bad_uploads(tmp_path / "bad", joe_clips[0]), *joe_clips[:3]])
            expect_message(page, "notes.wav: not audio this can read")
            table = page.locator("#own-clips")
            for problem in ("silent:", "too short: 0.5 s", "clipped:"):
                expect(table).to_contain_text(problem)  # text content: long cells are cut on screen
            summary = page.locator("#own-summary")
            assert "3 clip(s) accepted" in summary.inner_text()
            assert "at least 30 s is needed" in summary.inner_text()
            page.locator("#own-start").click()
            expect_message(page, "tick the consent box first")
            page.locator("#own-consent input").check()
            page.locator("#own-start").click()
            expect_message(page, "at least 30 s is needed")
            assert proc.poll() is None

            # the rest as a zip with transcripts; then the voice-only method to the end
            check_clips(page, [zip_with_texts(joe_clips[3:], tmp_path / "session.zip")])
            summary.get_by_text("12 clip(s) accepted").wait_for()
            assert "Nearest stock voice: am_michael" in summary.inner_text()
            page.locator("#own-steps input[type=number]").fill("4")
            page.locator("#own-steps input[type=number]").press("Enter")
            page.locator("#own-start").click()
            page.locator('#own-progress-box[data-state="running"]').wait_for()
            assert wait_state(page, ("finished", "failed")) == "finished", page.locator(
                "#own-progress"
            ).inner_text()

            # 3. hear and measure
            measures = page.locator("#own-measures")
            measures.locator("table").first.wait_for()
            assert "retention" in measures.inner_text() and "am_michael" in measures.inner_text()
            for voice in ("af_heart", "bf_emma", "bm_george"):
                for system in ("base", "adapted"):
                    page.locator(f"#own-stock-{voice}-{system} a[data-testid=download-link]").wait_for()
            page.locator("#own-text textarea").fill(SENTENCE)
            page.locator("#own-speak").click()
            link = page.locator("#own-new-audio a[data-testid=download-link]")
            link.wait_for()
            wave, sr = sf.read(io.BytesIO(fetch(link.get_attribute("href"))))
            # the player shows 0:00 until the browser has read the clip's header: wait, as a listener would
            expect(page.locator("#own-new-audio #duration")).not_to_have_text("0:00", timeout=30_000)
            assert len(set(heard(wave, sr)) & set(words(SENTENCE))) >= 0.7 * len(set(words(SENTENCE)))
            page.locator("#own-start-audio a[data-testid=download-link]").wait_for()
            keep_screenshot(page, tmp_path, "demo-own-voice.png")

            # 4. take it away: the .bin pack, in Kokoro's int8 ONNX graph, says the sentence
            page.locator("#own-download").click()
            pack_link = page.locator('#own-files-out a[download="joe.bin"]')
            pack_link.wait_for()
            page.locator('#own-files-out a[download="joe-adapter.zip"]').wait_for()
            pack = fetch(pack_link.get_attribute("href"))
            assert len(pack) == 510 * 256 * 4
            spoken, rate = int8_speaks(pack, kokoro_paths)
            assert len(set(heard(spoken, rate)) & set(words(SENTENCE))) >= 0.7 * len(set(words(SENTENCE)))

            # another browser: none of these jobs, nothing to cancel
            theirs = browser.new_context().new_page()
            theirs.goto(url, timeout=120_000)
            theirs.get_by_role("tab", name="Your voice").click()
            page.locator("#own-jobs input").click()
            assert any("joe (finished" in o for o in page.get_by_role("option").all_inner_texts())
            page.keyboard.press("Escape")
            theirs.locator("#own-jobs input").click()
            assert not any("joe" in o for o in theirs.get_by_role("option").all_inner_texts())
            theirs.locator("#own-cancel").click()
            expect_message(theirs, "give your clips first")

            # 2. LoRA + KFAC: curvature estimated here, a few steps, cancelled and resumed
            page.locator("#own-new").click()
            expect(summary).not_to_contain_text("clip(s) accepted")  # the fresh form is back from the server
            name_box = page.locator("#own-name input, #own-name textarea").first
            name_box.fill("joe_lora")
            check_clips(page, [zip_with_texts(joe_clips, tmp_path / "all.zip")])
            summary.get_by_text("12 clip(s) accepted").wait_for()
            expect(name_box).to_have_value("joe_lora")
            page.locator("#own-method input[value='lora+prior']").check()
            steps_box = page.locator("#own-steps input[type=number]")
            expect(steps_box).to_have_value("100")  # the method's default is back before we type ours
            steps_box.fill("2")
            steps_box.press("Enter")
            expect(steps_box).to_have_value("2")
            page.locator("#own-consent input").check()
            page.locator("#own-start").click()
            page.locator("#own-progress-text").get_by_text("running: own-speech").wait_for()
            page.locator("#own-cancel").click()
            assert wait_state(page, ("cancelled",), 60) == "cancelled"
            page.locator("#own-resume").click()
            assert wait_state(page, ("finished", "failed")) == "finished", page.locator(
                "#own-progress"
            ).inner_text()
            # the merged ONNX export, built on request by the same job
            page.locator("#own-onnx").click()
            page.locator('#own-progress-box[data-state="running"]').wait_for()
            assert wait_state(page, ("finished", "failed")) == "finished"
            page.locator("#own-get-onnx").click()
            onnx_link = page.locator('#own-files-out a[download="joe_lora-onnx.zip"]')
            onnx_link.wait_for()
            names = zipfile.ZipFile(io.BytesIO(fetch(onnx_link.get_attribute("href")))).namelist()
            assert any(n.endswith(".onnx") for n in names) and "joe_lora-onnx/joe_lora.bin" in names
            jobs = sorted((work / "jobs").iterdir())
            lora = next(j for j in jobs if "joe_lora" in (j / "owner.json").read_text())
            assert any((lora / "run" / "adapt" / "adapter").iterdir())  # LoRA weights were written
            assert (work / "curvature" / "kfac.safetensors").is_file()
            assert proc.poll() is None
    finally:
        server.close()
        stop_workers(work)


def stop_workers(work: Path) -> None:
    """Job workers run in their own sessions so that they outlive the server (a restarted demo picks its
    queue up again); a test that ends early must stop them itself."""
    for state_file in work.glob("jobs/*/state.json"):
        state = json.loads(state_file.read_text())
        ended = state_file.with_name("exit.json")
        if ended.is_file() and json.loads(ended.read_text()).get("attempt") == state.get("attempt"):
            continue
        if state.get("state") == "running" and state.get("pid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(state["pid"]), signal.SIGTERM)
