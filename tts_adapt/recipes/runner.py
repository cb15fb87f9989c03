"""Run a recipe's stages in order, skipping the finished ones (ESPnet-style ``--stage/--stop-stage``)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ..utils.io import write_json
from .recipe import Recipe, RecipeError, Stage

log = logging.getLogger(__name__)


class StageFailed(RuntimeError):
    """A stage's command exited with an error."""


def stamp_path(out: Path, stage: Stage) -> Path:
    return out / "stages" / f"{stage.tag}.done.json"


def plan_path(out: Path) -> Path:
    """The run's plan: every stage of the recipe as last run with these values (``plan.json``)."""
    return out / "stages" / "plan.json"


def write_plan(path: Path, plan: dict) -> None:
    """Write the plan only when it changed: a rerun with nothing to do leaves the run folder untouched."""
    try:
        if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(plan, default=str)):
            return
    except (OSError, json.JSONDecodeError):
        pass
    write_json(path, plan)


def is_done(out: Path, stage: Stage, argv: list[str]) -> bool:
    """Finished before with the same command (a changed command runs again)."""
    path = stamp_path(out, stage)
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("argv") == argv
    except (OSError, json.JSONDecodeError):
        return False


def select(
    recipe: Recipe,
    start: int | None,
    stop: int | None,
    only: list[str] | None,
    stages: list[Stage] | None = None,
) -> list[Stage]:
    """Stages by number range and by name; a name picks a YAML stage (all its grid points) or one point,
    by its name or by its tag as the ``stages/`` folder shows it (``06-voice.target-joe.seed-0``)."""
    stages = recipe.stages if stages is None else stages
    names = {s.name for s in recipe.stages} | {s.name for s in stages} | {s.tag for s in stages}
    bad = sorted(set(only or []) - names)
    if bad:
        raise RecipeError(
            f"{recipe.path}: no stage named {', '.join(bad)} (stages: "
            f"{', '.join(sorted(s.name for s in recipe.stages))})"
        )
    chosen = [s for s in stages if (start is None or s.index >= start) and (stop is None or s.index <= stop)]
    return [s for s in chosen if not only or s.name in only or s.tag in only or s.family in only]


def run_recipe(
    recipe: Recipe,
    out: str | os.PathLike,
    overrides: dict[str, str] | None = None,
    start: int | None = None,
    stop: int | None = None,
    only: list[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    variant: str | None = None,
) -> list[str]:
    """Run the selected stages; returns the tags of the stages that ran (or would run, dry)."""
    out = Path(out)
    values = recipe.resolve(out, overrides, variant)
    expanded = recipe.expand(values)
    if not dry_run:  # what the whole run will hold, whatever this call selects: summaries read it
        plan = {
            "recipe": recipe.name,
            "variant": variant,
            "values": values,
            "stages": [{"tag": s.tag, "family": s.family, "bindings": s.bindings} for s in expanded],
        }
        write_plan(plan_path(out), plan)
    ran = []
    for stage in select(recipe, start, stop, only, expanded):
        argvs = recipe.commands(stage, values)
        # a single command's stamp keeps its argv; a stage of several commands stamps the list
        stamp = argvs[0] if len(argvs) == 1 else argvs
        launcher = recipe.launcher(stage, values)
        if not force and not stage.always and is_done(out, stage, stamp):
            log.info("stage %s: done before, skipping", stage.tag)
            continue
        # a launcher (e.g. ``torchrun --nproc-per-node 4``) takes ``-m tts_adapt`` like python does
        fulls = [[*(launcher or [sys.executable]), "-m", "tts_adapt", *argv] for argv in argvs]
        ran.append(stage.tag)
        if dry_run:
            for full in fulls:
                print(f"[{stage.tag}] {' '.join(full)}")
            continue
        _execute(out, stage, fulls, argvs, stamp)
    return ran


def _execute(out: Path, stage: Stage, fulls: list[list[str]], argvs: list[list[str]], stamp: list) -> None:
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{stage.tag}.log"
    t0 = time.time()
    for full, argv in zip(fulls, argvs, strict=True):
        print(f"==> stage {stage.tag}: tts-adapt {' '.join(argv)}", flush=True)
        with open(log_path, "a", encoding="utf-8") as log_file:
            log_file.write(f"\n$ {' '.join(full)}\n")
            proc = subprocess.Popen(
                full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                log_file.write(line)
            code = proc.wait()
        if code != 0:
            raise StageFailed(
                f"stage {stage.tag} failed (exit {code}); see {log_path}. Fix it and run the recipe again "
                f"to continue from this stage."
            )
    seconds = time.time() - t0
    write_json(stamp_path(out, stage), {"argv": stamp, "seconds": round(seconds, 2), "finished": time.time()})
    print(f"<== stage {stage.tag} done in {seconds:.1f} s", flush=True)
