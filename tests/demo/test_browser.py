"""The demo as a person uses it: the real page in headless Chromium, driven by Playwright.

The server is ``demo/app.py`` started as a user starts it (base model alone, a corpus folder of
references) on a free loopback port. The page must label references by speaker, play what Speak
returns, and answer every bad input with a visible message while the server stays up. One screenshot
is kept (pytest's tmp folder, and ``$TTS_ADAPT_ARTIFACTS`` when set).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts_adapt.cli import main as cli

from ..conftest import REPO

START_TIMEOUT_S = 600  # importing torch and gradio on a busy 2-core machine
SPEAK_TIMEOUT_S = 240
MESSAGE_TIMEOUT_S = 60


def _need(what: str) -> None:
    message = f"the browser test needs {what}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI installs it: .ci/run)")
    pytest.skip(message)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _need("Debian's chromium (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_served(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the demo exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the demo did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def serve(args: list[str], tmp_path: Path):
    """``python demo/app.py ARGS`` on a free loopback port; yields (url, process); stopped at the end."""
    pytest.importorskip("gradio")
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(REPO / "demo" / "app.py"), *args, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(url, proc, log)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def server(synthetic_corpus, tmp_path):
    """``python demo/app.py`` on the base model alone; yields (url, process); stopped at the end."""
    ckpt, config = tmp_path / "base.pth", tmp_path / "config.yml"
    args = ["init-model", "--config", "micro", "--frames-per-token", "3", "--out", str(ckpt)]
    assert cli([*args, "--config-out", str(config)]) == 0
    yield from serve(
        ["--checkpoint", str(ckpt), "--config", str(config), "--references", str(synthetic_corpus)], tmp_path
    )


@pytest.fixture
def kokoro_server(kokoro_paths, tmp_path):
    """``python demo/app.py --model kokoro``, as the README starts it."""
    yield from serve(["--model", "kokoro", "--workdir", str(tmp_path / "own-voice")], tmp_path)


# every output's <audio> has a clip whose metadata loaded, with a finite, non-zero duration
OUTPUTS_READY = """(previous) => {
  const players = [...document.querySelectorAll('[id^="output-"] audio')];
  return players.length > 0 && players.every(a => a.src && !previous.includes(a.src) && a.error === null
    && a.readyState >= 1 && isFinite(a.duration) && a.duration > 0);
}"""
OUTPUTS = "() => [...document.querySelectorAll('[id^=\"output-\"] audio')].map(a => [a.src, a.duration])"


def speak_and_listen(page, previous: list[str]) -> list[tuple[str, float]]:
    """Click Speak; every output player's (src, duration), each a new clip."""
    page.locator("#speak").click()
    page.wait_for_function(OUTPUTS_READY, arg=previous, timeout=SPEAK_TIMEOUT_S * 1000)
    players = page.evaluate(OUTPUTS)
    for src, duration in players:
        with urllib.request.urlopen(src, timeout=30) as r:  # the clip the browser plays, decoded here
            wave, sr = sf.read(io.BytesIO(r.read()))
        assert len(wave) > 0 and np.isfinite(wave).all()
        assert duration == pytest.approx(len(wave) / sr, abs=0.05), "browser and file disagree on duration"
    return players


def expect_message(page, text: str) -> None:
    """The message is on the page; then every toast is closed (several may be open at once, and each
    closes itself too, so they are closed one at a time, first first)."""
    from playwright.sync_api import Error, expect

    toast = page.get_by_test_id("toast-text").filter(has_text=text).first
    expect(toast).to_be_visible(timeout=MESSAGE_TIMEOUT_S * 1000)
    close = page.get_by_test_id("toast-close")
    for _ in range(20):
        if close.count() == 0:
            return
        try:
            close.first.click(timeout=2000)
        except Error:  # it closed itself meanwhile
            pass


@contextmanager
def headless_chromium():
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser); skipped
    without either, except under ``CI=true``."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package (pip install -e '.[dev]')")
    executable = chromium()
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, headless=True, timeout=60_000)
        except PlaywrightError as e:
            _need(f"a Chromium that starts headless ({e})")
        try:
            yield browser
        finally:
            browser.close()


def open_demo(browser, url: str):
    """A page of the demo at ``url``, loaded up to its Speak button."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(MESSAGE_TIMEOUT_S * 1000)
    page.goto(url, timeout=120_000)
    page.locator("#speak").wait_for()
    return page


def upload(page, path: Path) -> None:
    clear = page.locator("#reference-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#reference-upload input[type=file]").set_input_files(str(path))


def tone(path: Path, seconds: float, sr: int, channels: int = 1, subtype: str = "PCM_16") -> Path:
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.1 * np.sin(2 * np.pi * 220 * t)
    sf.write(str(path), np.repeat(wave[:, None], channels, axis=1), sr, subtype=subtype)
    return path


def test_demo_in_a_browser(server, synthetic_corpus, tmp_path):
    url, proc = server
    with headless_chromium() as browser:
        page = open_demo(browser, url)

        # known references are offered by speaker, not by file path
        page.locator("#known-reference input").click()
        # (Gradio marks the selected option with a check mark)
        labels = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
        speakers = sorted(d.name for d in (synthetic_corpus / "train-synth").iterdir())
        assert labels and all(label.startswith("speaker ") for label in labels), labels
        assert not any("/" in label or ".wav" in label for label in labels), labels
        assert f"speaker {speakers[1]} (1)" in labels, labels
        page.get_by_role("option", name=f"speaker {speakers[1]} (1)", exact=True).click()

        page.locator("#text textarea").fill("Hello there, how are you?")
        first = speak_and_listen(page, [])
        assert len(first) == 1  # the base model alone: one output
        keep_screenshot(page, tmp_path, "demo.png")

        # bad input: a visible message each time
        page.locator("#text textarea").fill("")
        page.locator("#speak").click()
        expect_message(page, "type some text to speak")
        page.locator("#text textarea").fill("a" * 2001)
        page.locator("#speak").click()
        expect_message(page, "2,001 characters; at most 2,000")

        not_audio = tmp_path / "notes.wav"
        not_audio.write_text("these are words, not sound\n" * 20)
        upload(page, not_audio)
        expect_message(page, "notes.wav is not a recording the demo can read")
        upload(page, tone(tmp_path / "long.wav", 61, 8000))
        expect_message(page, "long.wav lasts 61 s; at most 60 s")
        big = tone(tmp_path / "big.wav", 55, 48000, channels=2, subtype="FLOAT")  # 21 MB, under 60 s
        assert big.stat().st_size > 20_000_000
        upload(page, big)
        expect_message(page, "big.wav is 21.1 MB; at most 20 MB")

        # still serving: an uploaded good recording is spoken
        good = sorted((synthetic_corpus / "train-synth" / speakers[0]).rglob("*.wav"))[0]
        upload(page, good)
        page.locator("#text textarea").fill("Still here.")
        speak_and_listen(page, [src for src, _ in first])
        assert proc.poll() is None


def keep_screenshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("TTS_ADAPT_ARTIFACTS"):
        artifacts = Path(os.environ["TTS_ADAPT_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, artifacts / name)


def test_kokoro_voices_in_a_browser(kokoro_server, tmp_path):
    """Kokoro's page offers its 28 voices by name, speaks the one chosen, and names a bad blend."""
    url, proc = kokoro_server
    with headless_chromium() as browser:
        page = open_demo(browser, url)
        page.locator("#voice input").click()
        labels = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
        assert len(labels) == 28 and "bm_george (British English, male)" in labels, labels
        page.get_by_role("option", name="bm_george (British English, male)", exact=True).click()
        page.locator("#text textarea").fill("Hello there, how are you?")
        played = speak_and_listen(page, [])
        assert len(played) == 1 and 0.8 < played[0][1] < 5
        keep_screenshot(page, tmp_path, "demo-kokoro.png")
        page.locator("#blend textarea, #blend input").first.fill("af_heart:0.5,nobody:0.5")
        page.locator("#speak").click()
        expect_message(page, "unknown voice 'nobody'")
        assert proc.poll() is None
