"""The demo's "Your voice" tab (Gradio): give clips, adapt Kokoro in the background, hear, measure, take it.

Every action goes through :mod:`.intake`, :mod:`.jobs` and :mod:`.results`; the page only shows them.
The browser keeps a random job key in its local storage (``gr.BrowserState``): the server finds that
browser's jobs by the key's hash, so a reload finds them again and another browser sees none of them.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..audio_out import to_pcm16
from ..utils.io import write_text
from .intake import Whisper, clip_summary, load_clips, take_clips, write_corpus
from .jobs import Job, JobStore, NotYours, Progress, new_secret
from .results import adapter_zip, onnx_zip, read_measures, stock_clip, voice_files

log = logging.getLogger("tts_adapt.demo")

METHODS = {
    "voice": "Voice pack only: a few minutes, nothing forgotten (no weight moves)",
    "lora+prior": "LoRA + KFAC prior: longer, closer to your voice; the prior holds the stock voices",
}
DEFAULT_STEPS = {"voice": 40, "lora+prior": 100}
MAX_STEPS = 400
STOCK_SHOWN = ("af_heart", "bf_emma", "bm_george")
CONSENT = (
    "This is my own voice, or I have the speaker's permission to make a synthetic voice from these "
    "recordings."
)


@dataclass
class Workshop:
    """What the tab needs besides the page: the job store, the base model, and models loaded on demand."""

    store: JobStore
    base: object  # the loaded base model (Kokoro)
    checkpoint: Path
    curvature: Path | None = None  # a KFAC file to use; else estimated once, in the store
    curvature_utterances: int = 6
    device: str = "cpu"
    asr_backend: str | None = None
    _whisper: Whisper | None = None
    _models: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def whisper(self) -> Whisper:
        with self._lock:
            if self._whisper is None:
                self._whisper = Whisper(self.asr_backend)
            return self._whisper

    def adapted_model(self, job: Job):
        """The job's adapted model, loaded once (two at most are kept)."""
        from ..train import load_adapted_model

        key = str(job.adapted_dir)
        with self._lock:
            if key not in self._models:
                if len(self._models) >= 2:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = load_adapted_model(job.adapted_dir, checkpoint=self.checkpoint).to(
                    self.device
                )
            return self._models[key]

    def shared_curvature(self) -> Path:
        return self.curvature or self.store.root / "curvature" / "kfac.safetensors"

    def recipe_variables(self, job: Job, corpus: Path, method: str, steps: int, start_voice: str) -> dict:
        """The ``own_voice`` recipe's variables for a job (what the page sends is checked here, since a
        request can come from outside the page too)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not 1 <= int(steps) <= MAX_STEPS:
            raise ValueError(f"training steps: 1 to {MAX_STEPS}, got {steps}")
        values = {
            "clips": str(corpus),
            "name": job.name,
            "start_voice": start_voice,
            "method": method,
            "steps": str(int(steps)),
            "device": self.device,
        }
        if method == "lora+prior":
            curvature = self.shared_curvature()
            values.update(
                curvature=str(curvature),
                compute_curvature="0" if curvature.is_file() else "1",
                curvature_utterances=str(self.curvature_utterances),
                prior_args="--curvature {curvature} --lambda {lambda}",
            )
        return values


def progress_html(progress: Progress) -> str:
    """A bar for the training steps (or the stage list), and one line of words."""
    stages = ["adapt", "measure", "export-voice"]
    done = [s for s in stages if s in progress.done_stages]
    if progress.state == "running" and progress.stage == "adapt" and progress.steps:
        fraction = progress.step / progress.steps
    else:
        fraction = len(done) / len(stages)
    if progress.state == "finished":
        fraction = 1.0
    colour = {"failed": "#c0392b", "cancelled": "#7f8c8d", "stopped": "#d68910"}.get(
        progress.state, "#2e86c1"
    )
    return (
        f'<div id="own-progress-box" data-state="{progress.state}">'
        f'<div style="background:#e5e7e9;border-radius:4px;height:14px">'
        f'<div style="width:{100 * fraction:.0f}%;background:{colour};height:14px;border-radius:4px">'
        "</div></div>"
        f'<p id="own-progress-text">{html.escape(progress.line())}'
        + (f" (done: {html.escape(', '.join(progress.done_stages))})" if progress.done_stages else "")
        + "</p></div>"
    )


def clip_rows(rows: list[dict]) -> list[list]:
    return [
        [
            r["stem"],
            r["name"],
            r["seconds"],
            "ok" if not r["problems"] else "; ".join(r["problems"]),
            r["text"],
        ]
        for r in rows
    ]


def measures_markdown(job: Job) -> str:
    m = read_measures(job)
    if m is None:
        return ""
    lines = [
        f"**{m.voice}** reading {m.sentences} of your sentences, against your clips (speaker similarity: "
        "higher is closer; Whisper word error rate: lower is clearer):",
        "",
        "| voice | similarity to your clips | WER |",
        "|---|---|---|",
        f"| new voice **{m.voice}** | {m.new_sim:.3f} | {m.new_wer:.3f} |",
        f"| stock voice it started from ({m.start_voice}) | {m.start_sim:.3f} | {m.start_wer:.3f} |",
    ]
    if m.clips_sim is not None:
        lines.append(f"| your clips against each other (the ceiling) | {m.clips_sim:.3f} | – |")
    if m.stock:
        lines += [
            "",
            "Stock voices through the adapted model against the base (same text, seed and voice pack; "
            "retention 1.000 means unchanged):",
            "",
            "| stock voice | retention | WER adapted / base | still nearest itself |",
            "|---|---|---|---|",
        ]
        for voice, v in m.stock.items():
            lines.append(
                f"| {voice} | {v['retention']:.3f} | {v['wer']:.3f} / {v['wer_base']:.3f} | "
                f"{'yes' if v['kept'] else 'no'} |"
            )
    return "\n".join(lines)


def browser_key(shop: Workshop):
    """The browser's job key, kept in its local storage. Create it at the page's top level, outside
    any tab (a component in a tab not yet opened is not mounted when the page loads, so its stored value
    would not reach the load event), and encrypted with the store's own secret, so a server restart
    can still read it."""
    import gradio as gr

    return gr.BrowserState(None, storage_key="tts-adapt-own-voice-key", secret=shop.store.browser_secret())


def build_tab(shop: Workshop, user_error, key):
    """The tab's components and events, inside the caller's ``gr.Blocks`` (call it within a ``gr.Tab``);
    ``key`` is :func:`browser_key`'s component.

    Returns ``(fn, inputs, outputs)`` for the caller's page-load event, which restores this browser's
    newest job (or gives the browser its job key)."""
    import gradio as gr

    from ..models.kokoro.nearest import nearest_voice

    job_id = gr.State(None)
    seen = gr.State("")

    def job_of(secret: str, jid: str | None) -> Job:
        if not jid:
            raise ValueError("give your clips first (section 1)")
        return shop.store.get(secret, jid)

    def errors(fn):
        """Every handler's known failures become a message on the page; the server keeps serving."""

        @functools.wraps(fn)  # keeps the signature: Gradio finds gr.Progress parameters in it
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ValueError, FileNotFoundError, NotYours) as e:
                raise user_error(str(e)) from e
            except Exception as e:
                log.exception("own-voice action failed")
                raise user_error(f"{type(e).__name__}: {e}") from e

        return wrapped

    gr.Markdown(
        "Make a Kokoro voice from your own recordings, here, on this machine. "
        f"Jobs and uploads stay in `{shop.store.root}`; delete that folder to remove them all. "
        "Another browser cannot see or stop your jobs."
    )
    with gr.Row():
        jobs = gr.Dropdown(label="Your voices", choices=[], value=None, elem_id="own-jobs", scale=3)
        new = gr.Button("New voice", elem_id="own-new", scale=1)

    gr.Markdown("### 1. Give the voice")
    with gr.Row():
        name = gr.Textbox(label="Name of the new voice", value="my_voice", elem_id="own-name")
        files = gr.File(
            label="Clips: WAV, FLAC, OGG, MP3, or a zip of them (with same-name .txt transcripts, if any)",
            file_count="multiple",
            file_types=[".wav", ".flac", ".ogg", ".mp3", ".zip"],
            elem_id="own-files",
        )
        recording = gr.Audio(
            label="…or record a clip (read a sentence; add as many as you like)",
            sources=["microphone"],
            type="filepath",
            elem_id="own-record",
        )
    check = gr.Button("Check and transcribe", variant="primary", elem_id="own-check")
    table = gr.Dataframe(
        headers=["id", "clip", "seconds", "check", "text (correct it if Whisper misheard)"],
        datatype=["str", "str", "number", "str", "str"],
        interactive=True,
        static_columns=[0, 1, 2, 3],
        column_widths=["16%", "16%", "7%", "21%", "40%"],
        wrap=True,
        elem_id="own-clips",
    )
    summary = gr.Markdown(elem_id="own-summary")
    consent = gr.Checkbox(label=CONSENT, value=False, elem_id="own-consent")

    gr.Markdown("### 2. Adapt")
    with gr.Row():
        method = gr.Radio(
            [(label, m) for m, label in METHODS.items()], value="voice", label="Method", elem_id="own-method"
        )
        steps = gr.Slider(
            1, MAX_STEPS, value=DEFAULT_STEPS["voice"], step=1, label="Training steps", elem_id="own-steps"
        )
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="own-start")
        cancel = gr.Button("Cancel", elem_id="own-cancel")
        resume = gr.Button("Resume", elem_id="own-resume")
    progress_box = gr.HTML(elem_id="own-progress")
    timer = gr.Timer(2.0)

    gr.Markdown("### 3. Hear and measure")
    with gr.Row():
        text = gr.Textbox(
            label="Text", value="This is my new voice, made on my own computer.", elem_id="own-text", scale=3
        )
        speak = gr.Button("Speak", elem_id="own-speak", scale=1)
    with gr.Row():
        new_audio = gr.Audio(label="Your new voice", type="numpy", interactive=False, elem_id="own-new-audio")
        start_audio = gr.Audio(
            label="The nearest stock voice (where it started), base model",
            type="numpy",
            interactive=False,
            elem_id="own-start-audio",
        )
    measures = gr.Markdown(elem_id="own-measures")
    stock_audio = []
    for voice in STOCK_SHOWN:
        with gr.Row():
            for system in ("base", "adapted"):
                stock_audio.append(
                    gr.Audio(
                        label=f"{voice}: {system}",
                        type="filepath",
                        interactive=False,
                        elem_id=f"own-stock-{voice}-{system}",
                    )
                )

    gr.Markdown(
        "### 4. Take it away\n"
        "The voice pack: `.pt` for Kokoro's PyTorch runtime, `.bin` for kokoro-js and Kokoro's ONNX "
        "graphs. After *voice pack only* it works in any stock Kokoro unchanged; after LoRA it belongs "
        "with the adapted weights: take the adapter folder (`tts-adapt synth --adapter`, "
        "`demo/app.py --adapted`) or the merged ONNX export."
    )
    with gr.Row():
        get_files = gr.Button("Voice pack and adapter", elem_id="own-download")
        build_onnx = gr.Button("Build the ONNX export (a few minutes)", elem_id="own-onnx")
        get_onnx = gr.Button("ONNX export", elem_id="own-get-onnx")
    downloads = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="own-files-out")

    # -- handlers ----------------------------------------------------------------------------------
    def job_choices(secret: str) -> list[tuple[str, str]]:
        out = []
        for job in shop.store.jobs_of(secret):
            out.append((f"{job.name} ({shop.store.progress(job).state}, {job.id})", job.id))
        return out

    def view(secret: str, jid: str | None):
        """Everything shown for a job (or for none)."""
        if not jid:
            return [], "", "", gr.update()
        job = shop.store.get(secret, jid)
        rows = load_clips(job.folder)
        return (
            clip_rows(rows),
            summary_text(job, rows),
            progress_html(shop.store.progress(job)),
            gr.update(value=job.name),
        )

    def summary_text(job: Job, rows: list[dict]) -> str:
        if not rows:
            return ""
        seconds, n, problem = clip_summary(rows)
        refused = len(rows) - n
        text = f"{n} clip(s) accepted, {seconds:.0f} s of speech" + (
            f"; {refused} refused (see each)" if refused else ""
        )
        nearest = job.folder / "nearest.txt"
        if nearest.is_file():
            text += f". Nearest stock voice: {nearest.read_text(encoding='utf-8').strip()}"
        if problem:
            text += f". **{problem}**"
        return text

    @errors
    def on_load(secret):
        log.info("own-voice page load: %s job key", "a known" if secret else "a new")
        secret = secret or new_secret()
        choices = job_choices(secret)
        jid = choices[0][1] if choices else None
        rows, summ, prog, name_update = view(secret, jid)
        return secret, gr.update(choices=choices, value=jid), jid, rows, summ, prog, name_update

    @errors
    def on_select(secret, jid):
        rows, summ, prog, name_update = view(secret, jid)
        return jid, rows, summ, prog, name_update

    def on_new():
        return None, gr.update(value=None), [], "", "", None, None

    @errors
    def on_check(secret, jid, voice_name, uploaded, recorded, progress=gr.Progress()):  # noqa: B008 (Gradio's convention)
        paths = list(uploaded or []) + ([recorded] if recorded else [])
        if not paths:
            raise ValueError("upload clips or record one first")
        if jid:
            job = shop.store.get(secret, jid)
            if shop.store.progress(job).state != "new":
                raise ValueError("this voice has been trained already: press 'New voice' to make another")
        else:
            job = shop.store.create(secret, voice_name)
        whisper = shop.whisper()
        _, skipped = take_clips(
            paths, job.folder, whisper, lambda k, n, shown: progress((k, n), desc=f"checking {shown}")
        )
        rows = load_clips(job.folder)
        accepted = [job.folder / "clips" / f"{r['stem']}.wav" for r in rows if not r["problems"]]
        if accepted:
            voice, ranking = nearest_voice([str(p) for p in accepted])
            write_text(job.folder / "nearest.txt", f"{voice} ({ranking[0][1]:.3f})\n")
        for message in skipped:
            gr.Warning(html.escape(message))
        return (
            job.id,
            gr.update(choices=job_choices(secret), value=job.id),
            clip_rows(rows),
            summary_text(job, rows),
            None,
            None,
        )

    @errors
    def on_start(secret, jid, rows, agreed, chosen_method, n_steps):
        job = job_of(secret, jid)
        if not agreed:
            raise ValueError("tick the consent box first: the voice must be yours or used with permission")
        saved = load_clips(job.folder)
        _, _, problem = clip_summary(saved)
        if problem:
            raise ValueError(problem)
        texts = {str(r[0]): str(r[4]) for r in _table_rows(rows)}
        corpus = write_corpus(job.folder, job.name, texts)
        nearest = (job.folder / "nearest.txt").read_text(encoding="utf-8").split()[0]
        shop.store.submit(job, shop.recipe_variables(job, corpus, chosen_method, n_steps, nearest))
        return progress_html(shop.store.progress(job)), gr.update(choices=job_choices(secret), value=job.id)

    @errors
    def on_cancel(secret, jid):
        job = job_of(secret, jid)
        shop.store.cancel(job)
        return progress_html(shop.store.progress(job))

    @errors
    def on_resume(secret, jid):
        job = job_of(secret, jid)
        shop.store.resume(job)
        return progress_html(shop.store.progress(job))

    def on_tick(secret, jid, last):
        if not secret or not jid:
            return gr.skip(), last
        try:
            shop.store.pump()
            job = shop.store.get(secret, jid)
            progress = shop.store.progress(job)
        except (ValueError, NotYours):
            return gr.skip(), last
        marker = f"{jid}:{progress.state}:{','.join(progress.done_stages)}"
        return progress_html(progress), marker

    @errors
    def on_results(secret, jid):
        """The measures and stock clips of a job, and the job list with its states (run on a change of
        job or of its state)."""
        if not secret or not jid:
            return ["", *([None] * len(stock_audio)), gr.skip()]
        job = shop.store.get(secret, jid)
        listed = gr.update(choices=job_choices(secret), value=jid)
        md = measures_markdown(job)
        if not md:
            return ["", *([None] * len(stock_audio)), listed]
        clips = [
            stock_clip(job, voice, "base" if system == "base" else job.name)
            for voice in STOCK_SHOWN
            for system in ("base", "adapted")
        ]
        folder = _serving_folder(job)
        return [
            md,
            *[str(shutil.copyfile(c, folder / f"{i}-{c.name}")) if c else None for i, c in enumerate(clips)],
            listed,
        ]

    @errors
    def on_speak(secret, jid, words):
        from ..models.styletts2.inference import model_voice_packs

        job = job_of(secret, jid)
        if not (job.adapted_dir / "manifest.json").is_file():
            raise ValueError("the adaptation has not finished yet")
        words = (words or "").strip()
        if not words:
            raise ValueError("type some text to speak")
        if len(words) > 2000:
            raise ValueError(f"the text has {len(words):,} characters; at most 2,000 are spoken at once")
        model = shop.adapted_model(job)
        if job.name not in model_voice_packs(model):
            raise ValueError(f"the adapted model has no voice {job.name!r}")
        start_voice = _start_voice(job)
        wave, sr = model.synthesize(words, reference=job.name, seed=0)
        base_wave, base_sr = shop.base.synthesize(words, reference=start_voice, seed=0)
        return (sr, to_pcm16(wave)), (base_sr, to_pcm16(base_wave))

    @errors
    def on_download(secret, jid):
        job = job_of(secret, jid)
        files = voice_files(job)
        if not files:
            raise ValueError("the voice pack is written when the job finishes")
        folder = _serving_folder(job)
        out = [shutil.copyfile(f, folder / f.name) for f in files]
        out.append(adapter_zip(job, folder))
        return [str(p) for p in out]

    @errors
    def on_build_onnx(secret, jid):
        job = job_of(secret, jid)
        request = _read_request(job)
        if "export-voice" not in shop.store.done_stages(job):
            raise ValueError("the ONNX export is built from a finished job")
        shop.store.submit(job, {**request, "onnx": "1"})
        return progress_html(shop.store.progress(job))

    @errors
    def on_get_onnx(secret, jid):
        job = job_of(secret, jid)
        return [str(onnx_zip(job, _serving_folder(job)))]

    def on_method(chosen):
        return gr.update(value=DEFAULT_STEPS.get(chosen, 40))

    panel = [table, summary, progress_box, name]
    jobs.input(on_select, [key, jobs], [job_id, *panel])
    new.click(on_new, None, [job_id, jobs, table, summary, progress_box, files, recording])
    check.click(
        on_check, [key, job_id, name, files, recording], [job_id, jobs, table, summary, files, recording]
    )
    method.change(on_method, method, steps)
    start.click(on_start, [key, job_id, table, consent, method, steps], [progress_box, jobs])
    cancel.click(on_cancel, [key, job_id], progress_box)
    resume.click(on_resume, [key, job_id], progress_box)
    timer.tick(on_tick, [key, job_id, seen], [progress_box, seen], show_progress="hidden")
    seen.change(on_results, [key, job_id], [measures, *stock_audio, jobs])
    job_id.change(on_results, [key, job_id], [measures, *stock_audio, jobs])
    speak.click(on_speak, [key, job_id, text], [new_audio, start_audio])
    get_files.click(on_download, [key, job_id], downloads)
    build_onnx.click(on_build_onnx, [key, job_id], progress_box)
    get_onnx.click(on_get_onnx, [key, job_id], downloads)
    return on_load, [key], [key, jobs, job_id, *panel]


def _table_rows(value) -> list[list]:
    """The Dataframe's rows whether Gradio passes a pandas frame, a dict or a list."""
    if value is None:
        return []
    if hasattr(value, "values") and hasattr(value, "columns"):
        return value.values.tolist()
    if isinstance(value, dict):
        return value.get("data", [])
    return list(value)


def _read_request(job: Job) -> dict:
    import json

    path = job.folder / "request.json"
    if not path.is_file():
        raise ValueError("this job was never started")
    return json.loads(path.read_text(encoding="utf-8"))["variables"]


def _start_voice(job: Job) -> str:
    return _read_request(job)["start_voice"]


_SERVING = Path(tempfile.gettempdir()) / f"tts-adapt-own-voice-{os.getpid()}"


def _serving_folder(job: Job) -> Path:
    """Where a job's files are copied for Gradio to serve (it serves the temporary folder, never the
    job folders): one folder per job, overwritten at each request, so copies do not pile up."""
    folder = _SERVING / job.id
    folder.mkdir(parents=True, exist_ok=True)
    return folder
