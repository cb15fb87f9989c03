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

``{out}`` is the run folder, ``{recipe_dir}`` the recipe file's folder; every other ``{name}`` is a
variable (a variable's value may itself name ``{out}`` or other variables). Stages run in order; each
leaves a stamp when it succeeds, so a re-run skips finished stages and continues where a crash stopped
it (and the commands themselves resume their own partial work).

Grids: a stage with ``matrix`` runs once per combination of its axes (the product, in the order
written), each combination a stage of its own with its own stamp and log::

  - name: adapt-kfac
    matrix: {lambda: "{lambdas}", seed: [0, 1, 2]}   # a list, or a variable holding a comma list
    run: adapt ... --lambda {lambda} --seed {seed} --out {out}/adapt/kfac-l{lambda}-s{seed}

``always: true`` runs a stage on every call, finished or not (a summary of whatever grid points exist
now). ``when: "{flag}"`` runs a stage only when the filled value is true (not ``""``, ``0``, ``false``,
``no``, ``off``). ``variants`` name sets of variable values (``recipe run --variant quick``).
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NESTED = re.compile(r"\{[A-Za-z0-9_]*\{")  # a field whose name is itself filled
_STAGE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FALSE = ("", "0", "false", "no", "off", "none")
STAGE_FIELDS = {"name", "run", "launcher", "description", "matrix", "when", "always"}


class RecipeError(ValueError):
    """A recipe that cannot run as written (the message names the file and the field)."""


@dataclass
class Stage:
    index: int
    name: str
    run: str | list[str]  # one command, or several run in order under one stamp
    launcher: str | None = None
    description: str = ""
    matrix: dict[str, Any] = field(default_factory=dict)  # axis -> list of values or "{variable}"
    when: str | None = None
    always: bool = False  # runs on every call (a summary over whatever points exist), never skipped
    bindings: dict[str, str] = field(default_factory=dict)  # one grid point of an expanded stage
    family: str = ""  # the YAML stage's name (== name unless expanded from a matrix)

    def __post_init__(self) -> None:
        self.family = self.family or self.name

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
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(
        self, out: Path, overrides: dict[str, str] | None = None, variant: str | None = None
    ) -> dict[str, str]:
        """Variable values for a run (defaults, then the variant, then ``overrides``); a missing required
        variable is an error naming all of them. Values may refer to ``{out}`` and to other variables."""
        values = {k: v for k, v in self.vars.items()}
        if variant is not None:
            if variant not in self.variants:
                known = ", ".join(sorted(self.variants)) or "none"
                raise RecipeError(f"{self.path}: no variant {variant!r} (variants: {known})")
            values.update(self.variants[variant])
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
        values["recipe_dir"] = str(self.path.resolve().parent)  # files that ship beside the recipe
        flat = {k: _scalar(v) for k, v in values.items()}
        looped = sorted(flat)
        for _ in range(len(flat) + 1):  # variables that name variables: fill until nothing changes
            filled = {k: fill(v, flat, f"{self.path} variable '{k}'") for k, v in flat.items()}
            if filled == flat:
                looped = sorted(k for k, v in flat.items() if _FIELD.search(v))
                if looped:
                    break
                return flat
            flat = filled
        raise RecipeError(f"{self.path}: variables refer to each other in a cycle ({', '.join(looped)})")

    def expand(self, values: dict[str, str]) -> list[Stage]:
        """The stages to run for these values: matrix stages become one stage per grid point, stages
        whose ``when`` is false are left out. Expanded names are ``<name>.<axis>-<value>...``."""
        out: list[Stage] = []
        for stage in self.stages:
            where = f"{self.path} stage '{stage.name}'"
            if stage.when is not None and fill(stage.when, values, where).strip().lower() in _FALSE:
                continue
            if not stage.matrix:
                out.append(stage)
                continue
            axes = {k: axis_values(v, values, f"{where} matrix '{k}'") for k, v in stage.matrix.items()}
            seen: set[str] = set()
            for point in itertools.product(*axes.values()):
                bindings = dict(zip(axes, point, strict=True))
                suffix = ".".join(f"{k}-{_safe(v)}" for k, v in bindings.items())
                name = f"{stage.name}.{suffix}"
                if name in seen:
                    raise RecipeError(f"{where}: two grid points share the stage name {name!r}")
                seen.add(name)
                out.append(
                    Stage(
                        stage.index,
                        name,
                        stage.run,
                        stage.launcher,
                        stage.description,
                        always=stage.always,
                        bindings=bindings,
                        family=stage.name,
                    )
                )
        return out

    def command(self, stage: Stage, values: dict[str, str]) -> list[str]:
        """The stage's argv (after ``tts-adapt``); the launcher prefix comes from :meth:`launcher`. For a
        stage of several commands, use :meth:`commands`."""
        argvs = self.commands(stage, values)
        if len(argvs) != 1:
            raise RecipeError(f"{self.path} stage '{stage.name}' runs {len(argvs)} commands; use commands()")
        return argvs[0]

    def commands(self, stage: Stage, values: dict[str, str]) -> list[list[str]]:
        """Every argv of the stage, in order."""
        runs = stage.run if isinstance(stage.run, list) else [stage.run]
        where = f"{self.path} stage '{stage.name}'"
        return [shlex.split(fill(r, {**values, **stage.bindings}, where)) for r in runs]

    def launcher(self, stage: Stage, values: dict[str, str]) -> list[str]:
        if not stage.launcher:
            return []
        return shlex.split(
            fill(stage.launcher, {**values, **stage.bindings}, f"{self.path} stage '{stage.name}' launcher")
        )


def _flag(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise RecipeError(f"{where} must be true or false, got {v!r}")
    return v


def _scalar(v: Any) -> str:
    """A variable's text: YAML lists become comma lists (what matrix axes read)."""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _safe(v: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", v)


def axis_values(spec: Any, values: dict[str, str], where: str) -> list[str]:
    """A matrix axis: a YAML list, or text (usually ``"{variable}"``) filled and split at commas.

    An empty axis is allowed (the stage then has no grid point, e.g. no extra seeds); repeated values are
    an error, since two stages would write the same outputs."""
    if isinstance(spec, (list, tuple)):
        items = [fill(str(x), values, where) for x in spec]
    else:
        items = [x.strip() for x in fill(str(spec), values, where).split(",")]
        items = [x for x in items if x]
    dup = sorted({x for x in items if items.count(x) > 1})
    if dup:
        raise RecipeError(f"{where}: repeated value(s) {', '.join(dup)}")
    return items


def fill(template: str, values: dict[str, str], where: str) -> str:
    """Fill ``{name}`` fields; a field may be built from another (``{start_{target}}``: the variable named
    by a grid point's value), so filling repeats, innermost first, while fields remain."""
    for _ in range(8):
        unknown = sorted({m for m in _FIELD.findall(template) if m not in values})
        if unknown:
            raise RecipeError(f"{where}: unknown variable(s) {', '.join('{' + u + '}' for u in unknown)}")
        filled = _FIELD.sub(lambda m: values[m.group(1)], template)
        if filled == template or not _NESTED.search(template):
            return filled
        template = filled
    raise RecipeError(f"{where}: fields nested more than 8 deep")


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
        if not _STAGE_NAME.fullmatch(name):
            raise RecipeError(f"{path}: stage {i} name {name!r} may only use letters, digits, '.', '_', '-'")
        if name in seen:
            raise RecipeError(f"{path}: two stages are named {name!r}")
        seen.add(name)
        extra = sorted(set(raw) - STAGE_FIELDS)
        if extra:
            raise RecipeError(f"{path}: stage {name!r} has unknown field(s) {', '.join(extra)}")
        matrix = raw.get("matrix") or {}
        if not isinstance(matrix, dict):
            raise RecipeError(f"{path}: stage {name!r} 'matrix' must map axis names to lists or '{{var}}'")
        for axis, spec in matrix.items():
            if not _IDENT.fullmatch(str(axis)) or axis == "out":
                raise RecipeError(f"{path}: stage {name!r} matrix axis {axis!r} is not a usable name")
            if not isinstance(spec, (list, tuple, str, int, float)):
                raise RecipeError(f"{path}: stage {name!r} matrix axis {axis!r} must be a list or '{{var}}'")
        when = raw.get("when")
        run = raw["run"]
        if isinstance(run, list):
            if not run or not all(isinstance(r, str) and r.strip() for r in run):
                raise RecipeError(f"{path}: stage {name!r} 'run' must be a command or a list of commands")
            run = [" ".join(r.split()) for r in run]
        else:
            run = " ".join(str(run).split())
        stages.append(
            Stage(
                i,
                name,
                run,
                raw.get("launcher"),
                raw.get("description", ""),
                matrix={str(k): v for k, v in matrix.items()},
                when=None if when is None else str(when),
                always=_flag(raw.get("always", False), f"{path}: stage {name!r} 'always'"),
            )
        )
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{path}: 'vars' must be a mapping")
    if "out" in variables:
        raise RecipeError(f"{path}: 'out' is reserved (the run folder, given with --out)")
    for stage in stages:
        clash = sorted(set(stage.matrix) & set(variables))
        if clash:
            raise RecipeError(f"{path}: stage {stage.name!r} matrix axis {clash[0]!r} is also a variable")
    variants = data.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise RecipeError(f"{path}: 'variants' must map variant names to mappings of variable values")
    for vname, vvals in variants.items():
        unknown = sorted(set(vvals) - set(variables))
        if unknown:
            raise RecipeError(f"{path}: variant {vname!r} sets unknown variable(s) {', '.join(unknown)}")
    return Recipe(
        str(data.get("name", path.stem)),
        path,
        str(data.get("description", "")).strip(),
        variables,
        stages,
        {str(k): dict(v) for k, v in variants.items()},
    )
