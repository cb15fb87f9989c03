"""Background jobs: ownership, the queue, failure, cancel and resume, with the real worker and recipe.

The worker is the real ``python -m tts_adapt.own_voice.worker`` running the ``own_voice`` recipe. A job
given a clips folder that does not exist fails in its ``adapt`` stage within seconds; a job that must
first render Kokoro's own speech (``compute_curvature=1``) runs long enough to be cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tts_adapt.own_voice.jobs import JobStore, NotYours, Progress, check_voice_name, new_secret

WAIT_S = 240


def wait_for(store: JobStore, job, states: set[str], timeout: float = WAIT_S) -> Progress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = store.progress(job)
        if progress.state in states:
            return progress
        time.sleep(0.5)
    raise AssertionError(
        f"job still {store.progress(job).state} after {timeout} s:\n{store.log_tail(job, 40)}"
    )


def running_in_group(pgid: int) -> list[str]:
    """``ps``'s word on the session the worker leads (its process group too): its processes that have
    not ended (a zombie has ended; it only waits for its parent to collect it)."""
    out = subprocess.run(["ps", "-o", "stat=,args=", "-s", str(pgid)], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.strip() and not line.strip().startswith("Z")]


def failing_variables(tmp_path: Path) -> dict[str, str]:
    return {"clips": str(tmp_path / "no-such-clips"), "name": "me", "start_voice": "am_michael", "steps": "2"}


def test_another_browser_sees_none_of_the_jobs(tmp_path):
    store = JobStore(tmp_path / "work")
    mine, theirs = new_secret(), new_secret()
    job = store.create(mine, "me")
    assert [j.id for j in store.jobs_of(mine)] == [job.id]
    assert store.jobs_of(theirs) == []
    with pytest.raises(NotYours):
        store.get(theirs, job.id)
    with pytest.raises(ValueError, match="no job"):
        store.get(mine, "../" + job.id)
    assert (
        "owner" in (job.folder / "owner.json").read_text()
        and mine not in (job.folder / "owner.json").read_text()
    )


def test_browser_secret_is_made_once_and_kept(tmp_path):
    first = JobStore(tmp_path).browser_secret()
    assert JobStore(tmp_path).browser_secret() == first and len(first) >= 24
    assert (tmp_path / "browser-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["", "a/b", "../x", "x" * 41, "-lead", "with space"])
def test_voice_names_that_cannot_be_a_folder_or_a_flag_are_refused(name):
    with pytest.raises(ValueError, match="the voice's name"):
        check_voice_name(name)


def test_step_lines_give_step_loss_and_time_left(tmp_path):
    store = JobStore(tmp_path)
    job = store.create(new_secret(), "me")
    log = job.adapted_dir / "train.log"
    log.parent.mkdir(parents=True)
    lines = [
        "2026-01-01 10:00:00,000 INFO tts_adapt.train.trainer: step 1/10 mel=1 total=5.5 utt/s=1",
        "2026-01-01 10:00:04,000 INFO tts_adapt.train.trainer: step 2/10 mel=1 total=4.5 utt/s=1",
        # resumed: only this attempt's steps time the rest (3 s a step)
        "2026-01-01 11:00:00,000 INFO tts_adapt.train.trainer: step 2/10 mel=1 total=4.4 utt/s=1",
        "2026-01-01 11:00:06,000 INFO tts_adapt.train.trainer: step 4/10 mel=1 total=3.25 utt/s=1",
    ]
    log.write_text("\n".join(lines) + "\n")
    progress = Progress("running", stage="adapt")
    store._training(job, progress)
    assert (progress.step, progress.steps, progress.loss) == (4, 10, 3.25)
    assert progress.seconds_left == pytest.approx(6 * 3.0)
    assert progress.line() == "adapt: step 4/10, loss 3.250, about 18 s left"


@pytest.mark.slow
def test_a_failed_stage_ends_the_job_with_its_reason_and_the_queue_moves_on(kokoro_paths, tmp_path):
    store = JobStore(tmp_path / "work", max_running=1)
    secret = new_secret()
    first, second = store.create(secret, "one"), store.create(secret, "two")
    store.submit(first, failing_variables(tmp_path))
    store.submit(second, failing_variables(tmp_path))
    assert store.progress(first).state == "running"
    assert store.progress(second).state == "queued"  # one at a time
    ended = wait_for(store, first, {"failed", "finished"})
    assert ended.state == "failed"
    assert "stage 03-adapt failed" in ended.message and "no-such-clips" in ended.message
    store.pump()
    assert wait_for(store, second, {"failed", "finished"}).state == "failed"
    with pytest.raises(ValueError, match="this job was never started"):
        store.resume(store.create(secret, "three"))


def test_cancel_stops_every_process_and_resume_continues(kokoro_paths, tmp_path):
    store = JobStore(tmp_path / "work")
    secret = new_secret()
    job = store.create(secret, "me")
    variables = {**failing_variables(tmp_path), "compute_curvature": "1", "curvature_utterances": "40"}
    store.submit(job, variables)
    deadline = time.monotonic() + WAIT_S
    while store.progress(job).stage != "own-speech":
        assert time.monotonic() < deadline and store.progress(job).state == "running", store.log_tail(job)
        time.sleep(0.5)
    pid = int(__import__("json").loads((job.folder / "state.json").read_text())["pid"])
    with pytest.raises(ValueError, match="already queued or running"):
        store.submit(job, variables)
    store.cancel(job)
    assert store.progress(job).state == "cancelled"
    assert running_in_group(pid) == []  # the worker's whole process group is gone
    with pytest.raises(ValueError, match="nothing to cancel"):
        store.cancel(job)
    store.resume(job)
    assert store.progress(job).state == "running"
    assert int(__import__("json").loads((job.folder / "state.json").read_text())["attempt"]) == 2
    # a restarted server (a new store on the same folder) finds the running job and can stop it
    restarted = JobStore(tmp_path / "work")
    (found,) = restarted.jobs_of(secret)
    assert found.id == job.id and restarted.progress(found).state == "running"
    pid = int(__import__("json").loads((job.folder / "state.json").read_text())["pid"])
    restarted.cancel(found)
    assert store.progress(job).state == "cancelled"
    assert running_in_group(pid) == []


def test_a_worker_that_dies_is_stopped_and_resumable(kokoro_paths, tmp_path):
    store = JobStore(tmp_path / "work")
    job = store.create(new_secret(), "me")
    store.submit(job, {**failing_variables(tmp_path), "compute_curvature": "1", "curvature_utterances": "40"})
    pid = int(__import__("json").loads((job.folder / "state.json").read_text())["pid"])
    os.killpg(pid, signal.SIGKILL)  # a crash, or the machine going down
    progress = wait_for(store, job, {"stopped"}, timeout=30)
    assert progress.resumable and "resume continues it" in progress.message
