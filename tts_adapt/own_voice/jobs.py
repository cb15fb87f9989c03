"""Background adaptation jobs for the demo: one folder per voice, owned by the browser that made it.

A job is the ``own_voice`` recipe run in ``<root>/jobs/<id>/run`` by a worker process of its own
(:mod:`.worker`), started in a new session so that it outlives a page reload and a server restart, and so
that cancelling kills it with every stage it started. Everything about a job is on disk:

* ``owner.json``: the SHA-256 of the owner's secret (the browser keeps the secret; the server never
  stores it), the voice's name and when it was made;
* ``request.json``: the recipe's variables; ``state.json``: queued / running (pid, attempt) / cancelled;
* ``exit.json``: written by the worker when an attempt ends (finished or failed, with the reason);
* ``worker.log`` and ``run/`` (the recipe's stamps, logs and outputs).

On a 2-core machine two trainings at once only make both slow, so at most ``max_running`` run and the
rest wait in order; :meth:`JobStore.pump` starts the next one (the page calls it on every poll).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..utils.io import write_json

STAGES = ("own-speech", "curvature", "adapt", "measure", "export-voice", "export-onnx")
_STEP = re.compile(r"^(\S+ \S+) INFO \S+: step (\d+)/(\d+) (.*)$")
_LOSS = re.compile(r"\btotal=(\S+)")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class NotYours(PermissionError):
    """A job asked for by a browser that does not hold its secret."""


def owner_hash(secret: str) -> str:
    if not secret or len(secret) < 16:
        raise NotYours("this page has no job key yet: reload it")
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A browser's job key (kept in its local storage)."""
    return secrets.token_urlsafe(24)


def check_voice_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValueError(
            "the voice's name: 1 to 40 letters, digits, '-' or '_', starting with a letter or digit "
            f"(got {name!r})"
        )
    return name


@dataclass
class Progress:
    """What the page shows of a job."""

    state: str  # new | queued | running | finished | failed | cancelled | stopped
    stage: str | None = None
    step: int = 0
    steps: int = 0
    loss: float | None = None
    seconds_left: float | None = None
    message: str = ""
    done_stages: list[str] = field(default_factory=list)

    @property
    def resumable(self) -> bool:
        return self.state in ("failed", "cancelled", "stopped")

    def line(self) -> str:
        """One human line: "adapt: step 12/40, loss 1.234, about 45 s left"."""
        if self.state == "running" and self.stage == "adapt" and self.steps:
            parts = [f"adapt: step {self.step}/{self.steps}"]
            if self.loss is not None:
                parts.append(f"loss {self.loss:.3f}")
            if self.seconds_left is not None:
                parts.append(f"about {_duration(self.seconds_left)} left")
            return ", ".join(parts)
        if self.state == "running":
            return f"running: {self.stage or 'starting'}"
        return self.state + (f": {self.message}" if self.message else "")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


@dataclass
class Job:
    id: str
    folder: Path
    name: str

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def export_dir(self) -> Path:
        return self.run_dir / "export"

    @property
    def adapted_dir(self) -> Path:
        return self.run_dir / "adapt"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _alive(pid: int, folder: Path) -> bool:
    """The worker ``pid`` still runs this job (a reused pid of another program does not count)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if "<defunct>" in text or not text.strip():
            return False
        return str(folder) in text
    return True


def _group_running(pgid: int) -> bool:
    """A process of the group still runs. Zombies do not count: they have ended and only wait for a
    parent to collect them (an orphaned stage, for init; a worker started by an earlier server, for
    nobody that is still alive)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel for the group, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False


def _wait_group_gone(pgid: int, timeout: float = 15.0) -> None:
    """Wait until no process of the group runs; SIGKILL what still runs halfway through."""
    deadline = time.monotonic() + timeout
    killed = False
    while time.monotonic() < deadline:
        if not _group_running(pgid):
            return
        if not killed and time.monotonic() > deadline - timeout / 2:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            killed = True
        time.sleep(0.1)


class JobStore:
    """Every job under ``root`` (the one folder a person deletes to remove their voices and uploads)."""

    def __init__(self, root: str | os.PathLike, max_running: int = 1) -> None:
        self.root = Path(root).resolve()
        self.max_running = max_running
        self._children: dict[int, subprocess.Popen] = {}  # workers this process started, to reap
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)

    def browser_secret(self) -> str:
        """The key that encrypts job keys in browsers' local storage: made once, kept in the store (a
        new one at every server start would orphan every browser's jobs)."""
        path = self.root / "browser-secret"
        if not path.is_file():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    # -- owning --------------------------------------------------------------------------------------
    def create(self, secret: str, name: str) -> Job:
        name = check_voice_name(name)
        job_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        folder = self.root / "jobs" / job_id
        folder.mkdir(parents=True)
        write_json(folder / "owner.json", {"owner": owner_hash(secret), "name": name, "created": time.time()})
        return Job(job_id, folder, name)

    def jobs_of(self, secret: str) -> list[Job]:
        """The jobs this browser owns, newest first."""
        mine = owner_hash(secret)
        out = []
        for folder in sorted((self.root / "jobs").iterdir(), reverse=True):
            meta = _read(folder / "owner.json")
            if meta and meta.get("owner") == mine:
                out.append(Job(folder.name, folder, meta["name"]))
        return out

    def get(self, secret: str, job_id: str) -> Job:
        if not job_id or not re.fullmatch(r"[0-9A-Za-z-]+", job_id):
            raise ValueError(f"no job {job_id!r}")
        folder = self.root / "jobs" / job_id
        meta = _read(folder / "owner.json")
        if meta is None:
            raise ValueError(f"no job {job_id!r}")
        if meta.get("owner") != owner_hash(secret):
            raise NotYours("this job belongs to another browser")
        return Job(job_id, folder, meta["name"])

    # -- running -------------------------------------------------------------------------------------
    def submit(self, job: Job, variables: dict[str, str]) -> None:
        """Queue the job's recipe run with these variables (a later submit with more, e.g. ``onnx=1``,
        runs only the stages that are not finished)."""
        state = _read(job.folder / "state.json") or {}
        if self.progress(job).state in ("queued", "running"):
            raise ValueError("this job is already queued or running")
        write_json(job.folder / "request.json", {"variables": {k: str(v) for k, v in variables.items()}})
        write_json(
            job.folder / "state.json",
            {"state": "queued", "attempt": int(state.get("attempt", 0)) + 1, "queued": time.time()},
        )
        self.pump()

    def resume(self, job: Job) -> None:
        request = _read(job.folder / "request.json")
        if request is None:
            raise ValueError("this job was never started")
        if not self.progress(job).resumable:
            state = self.progress(job).state
            raise ValueError(f"only a cancelled, failed or interrupted job resumes (this one is {state})")
        self.submit(job, request["variables"])

    def cancel(self, job: Job) -> None:
        state = _read(job.folder / "state.json") or {}
        progress = self.progress(job)
        if progress.state not in ("queued", "running"):
            raise ValueError(f"nothing to cancel: the job is {progress.state}")
        pid = state.get("pid")
        if pid and _alive(int(pid), job.folder):
            try:
                os.killpg(int(pid), signal.SIGTERM)  # the worker and every stage it started
            except ProcessLookupError:
                pass
            for _ in range(50):
                self._reap()
                if not _alive(int(pid), job.folder):
                    break
                time.sleep(0.1)
            else:
                os.killpg(int(pid), signal.SIGKILL)
            if int(pid) in self._children:
                self._children.pop(int(pid)).wait(timeout=30)
            _wait_group_gone(int(pid))
        write_json(job.folder / "state.json", {**state, "state": "cancelled", "cancelled": time.time()})
        self.pump()

    def pump(self) -> None:
        """Start queued jobs, oldest first, while fewer than ``max_running`` run."""
        self._reap()
        states = []
        for folder in (self.root / "jobs").iterdir():
            meta = _read(folder / "owner.json")
            if meta is None:
                continue
            job = Job(folder.name, folder, meta["name"])
            states.append(
                (job, self.progress(job).state, (_read(folder / "state.json") or {}).get("queued", 0))
            )
        running = sum(1 for _, s, _ in states if s == "running")
        for job, _, _ in sorted((x for x in states if x[1] == "queued"), key=lambda x: x[2]):
            if running >= self.max_running:
                break
            self._spawn(job)
            running += 1

    def _spawn(self, job: Job) -> None:
        state = _read(job.folder / "state.json") or {}
        log = open(job.folder / "worker.log", "a", encoding="utf-8")  # noqa: SIM115 (the child keeps it)
        log.write(f"\n=== attempt {state.get('attempt', 1)} at {datetime.now():%Y-%m-%d %H:%M:%S}\n")
        log.flush()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tts_adapt.own_voice.worker",
                str(job.folder),
                str(state.get("attempt", 1)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self._children[proc.pid] = proc
        write_json(
            job.folder / "state.json", {**state, "state": "running", "pid": proc.pid, "started": time.time()}
        )

    def _reap(self) -> None:
        """Collect the exit of workers this process started (else each ends as a zombie)."""
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]

    # -- watching ------------------------------------------------------------------------------------
    def progress(self, job: Job) -> Progress:
        state = _read(job.folder / "state.json")
        done = self.done_stages(job)
        if state is None:
            return Progress("new", done_stages=done)
        if state["state"] in ("queued", "cancelled"):
            return Progress(state["state"], done_stages=done)
        ended = _read(job.folder / "exit.json")
        if ended and ended.get("attempt") == state.get("attempt"):
            return Progress(ended["state"], message=ended.get("message", ""), done_stages=done)
        pid = state.get("pid")
        if not pid or not _alive(int(pid), job.folder):
            message = "the worker ended without finishing (resume continues it)"
            return Progress("stopped", message=message, done_stages=done)
        progress = Progress("running", stage=self.current_stage(job), done_stages=done)
        if progress.stage == "adapt":
            self._training(job, progress)
        return progress

    def done_stages(self, job: Job) -> list[str]:
        stamps = job.run_dir / "stages"
        if not stamps.is_dir():
            return []
        return [p.name.split(".")[0].split("-", 1)[1] for p in sorted(stamps.glob("*.done.json"))]

    def current_stage(self, job: Job) -> str | None:
        """The stage whose start the worker printed last and whose end it has not."""
        path = job.folder / "worker.log"
        if not path.is_file():
            return None
        current = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("==> stage "):
                current = line.split()[2].rstrip(":").split("-", 1)[1]
            elif line.startswith("<== stage ") or line.startswith("=== attempt"):
                current = None
        return current

    def _training(self, job: Job, progress: Progress) -> None:
        """Step, loss and time left from the training log's step lines (one per step: --log-every 1)."""
        path = job.adapted_dir / "train.log"
        if not path.is_file():
            return
        points = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _STEP.match(line)
            if not m:
                continue
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            step, steps = int(m.group(2)), int(m.group(3))
            if points and step <= points[-1][1]:
                points = []  # a resumed attempt: time only its own steps
            loss = _LOSS.search(m.group(4))
            points.append((when, step, steps, float(loss.group(1)) if loss else None))
        if not points:
            return
        _, progress.step, progress.steps, progress.loss = points[-1]
        if len(points) >= 2:
            per_step = (points[-1][0] - points[0][0]) / (points[-1][1] - points[0][1])
            progress.seconds_left = per_step * (progress.steps - progress.step)

    def log_tail(self, job: Job, lines: int = 15) -> str:
        path = job.folder / "worker.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
