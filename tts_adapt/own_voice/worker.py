"""``python -m tts_adapt.own_voice.worker JOB_FOLDER ATTEMPT``: run one job's recipe, then say how it ended.

Started by :class:`.jobs.JobStore` in a session of its own; stdout goes to the job's ``worker.log``.
``exit.json`` records the attempt it ends, so a stale record never describes a newer attempt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..utils.io import write_json

RECIPE = "own_voice"


def failure_message(error: BaseException, run_dir: Path) -> str:
    """The error, and the last lines of the stage log it points to (what went wrong, not just where)."""
    text = str(error)
    logs = (
        sorted((run_dir / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
        if (run_dir / "logs").is_dir()
        else []
    )
    if logs:
        tail = [
            line
            for line in logs[-1].read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip()
        ]
        errors = [line for line in tail if "error" in line.lower()]
        if errors:
            text += f" | {errors[-1].strip()[:400]}"
    return text


def main(argv: list[str] | None = None) -> int:
    from ..recipes import load_recipe, run_recipe

    args = sys.argv[1:] if argv is None else argv
    folder, attempt = Path(args[0]), int(args[1])
    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    run_dir = folder / "run"
    try:
        run_recipe(load_recipe(RECIPE), run_dir, request["variables"])
    except Exception as e:  # every failure ends the attempt with a message the page shows
        write_json(
            folder / "exit.json",
            {"attempt": attempt, "state": "failed", "message": failure_message(e, run_dir)},
        )
        print(f"job failed: {e}", flush=True)
        return 1
    write_json(folder / "exit.json", {"attempt": attempt, "state": "finished", "message": ""})
    print("job finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
