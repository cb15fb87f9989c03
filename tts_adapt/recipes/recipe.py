"""Recipes: YAML files of numbered stages, each one ``tts-adapt`` command with clear inputs and outputs.

```yaml
name: my-voice
description: adapt to my recordings with LoRA + KFAC prior
vars:                       # defaults; override with --set name=value; null means "must be given"
  checkpoint: null
  steps: 2000
stages:
  - name: curvature
    run: curvature --checkpoint {checkpoint} ... --out {out}/curvature.safetensors
  - name: adapt
    run: adapt --checkpoint {checkpoint} ... --out {out}/adapt
    launcher: torchrun --nproc-per-node {gpus}   # optional prefix for multi-GPU stages
```

``{out}`` is the run folder; every other ``{name}`` is a variable. Stages run in order; each leaves a
stamp when it succeeds, so a re-run skips finished stages and continues where a crash stopped it (and
the commands themselves resume their own partial work).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RecipeError(ValueError):
    """A recipe that cannot run as written (the message names the file and the field)."""


@dataclass
class Stage:
    index: int
    name: str
    run: str
    launcher: str | None = None
    description: str = ""

    @property
    def tag(self) -> str:
        return f"{self.index:02d}-{self.name}"


@dataclass
class Recipe:
    name: str
    path: Path
    description: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)

    def resolve(self, out: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """Variable values for a run; a missing required variable is an error naming all of them."""
        values = {k: v for k, v in self.vars.items()}
        values.update(overrides or {})
        unknown = sorted(set(overrides or {}) - set(self.vars))
        if unknown:
            raise RecipeError(f"{self.path}: --set names unknown variable(s) {', '.join(unknown)}")
        missing = sorted(k for k, v in values.items() if v is None)
        if missing:
            raise RecipeError(
                f"{self.path}: set the required variable(s) {', '.join(missing)} with "
                + " ".join(f"--set {m}=..." for m in missing)
            )
        values["out"] = str(out)
        return {k: str(v) for k, v in values.items()}

    def command(self, stage: Stage, values: dict[str, str]) -> list[str]:
        """The stage's argv (after ``tts-adapt``), launcher prefix separate: ``(launcher, args)``."""
        return shlex.split(fill(stage.run, values, f"{self.path} stage '{stage.name}'"))

    def launcher(self, stage: Stage, values: dict[str, str]) -> list[str]:
        if not stage.launcher:
            return []
        return shlex.split(fill(stage.launcher, values, f"{self.path} stage '{stage.name}' launcher"))


def fill(template: str, values: dict[str, str], where: str) -> str:
    unknown = sorted({m for m in _FIELD.findall(template) if m not in values})
    if unknown:
        raise RecipeError(f"{where}: unknown variable(s) {', '.join('{' + u + '}' for u in unknown)}")
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    """A recipe file by path, or by name among the bundled ``recipes/*.yaml``."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for candidate in (RECIPES_DIR / f"{name_or_path}.yaml", RECIPES_DIR / str(name_or_path)):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(f.stem for f in RECIPES_DIR.glob("*.yaml"))) if RECIPES_DIR.is_dir() else "none"
    raise FileNotFoundError(f"no recipe {str(name_or_path)!r} (a YAML file, or one of: {known})")


def load_recipe(name_or_path: str | os.PathLike) -> Recipe:
    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a mapping with 'stages'")
    stages_raw = data.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise RecipeError(f"{path}: 'stages' must be a non-empty list")
    stages, seen = [], set()
    for i, raw in enumerate(stages_raw, start=1):
        if not isinstance(raw, dict) or "name" not in raw or "run" not in raw:
            raise RecipeError(f"{path}: stage {i} needs 'name' and 'run'")
        name = str(raw["name"])
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise RecipeError(f"{path}: stage {i} name {name!r} may only use letters, digits, '.', '_', '-'")
        if name in seen:
            raise RecipeError(f"{path}: two stages are named {name!r}")
        seen.add(name)
        extra = sorted(set(raw) - {"name", "run", "launcher", "description"})
        if extra:
            raise RecipeError(f"{path}: stage {name!r} has unknown field(s) {', '.join(extra)}")
        stages.append(
            Stage(i, name, " ".join(str(raw["run"]).split()), raw.get("launcher"), raw.get("description", ""))
        )
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{path}: 'vars' must be a mapping")
    if "out" in variables:
        raise RecipeError(f"{path}: 'out' is reserved (the run folder, given with --out)")
    return Recipe(
        str(data.get("name", path.stem)), path, str(data.get("description", "")).strip(), variables, stages
    )
