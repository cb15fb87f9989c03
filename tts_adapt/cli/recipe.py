"""``tts-adapt recipe``: list, show and run staged recipes."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="run a staged, resumable recipe (recipes/*.yaml)")
    rs = p.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)

    q = rs.add_parser("list", help="the bundled recipes")
    q.set_defaults(func=run_list)

    q = rs.add_parser("show", help="a recipe's variables and stages")
    q.add_argument("recipe", help="recipe name or YAML path")
    q.set_defaults(func=run_show)

    q = rs.add_parser("run", help="run (or continue) a recipe in an output folder")
    q.add_argument("recipe", help="recipe name or YAML path")
    q.add_argument("--out", required=True, help="run folder (stages/, logs/ and every stage's outputs)")
    q.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a recipe variable")
    q.add_argument("--variant", help="a named set of variable values from the recipe's 'variants'")
    q.add_argument(
        "--quick", action="store_const", dest="variant", const="quick", help="same as --variant quick"
    )
    q.add_argument("--stage", type=int, help="first stage to run (number)")
    q.add_argument("--stop-stage", type=int, help="last stage to run (number)")
    q.add_argument("--only", help="comma-separated stage names to run")
    q.add_argument("--force", action="store_true", help="run selected stages even if finished before")
    q.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    q.set_defaults(func=run_run)


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--set expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value
    return out


def run_list(args: argparse.Namespace) -> int:
    from ..recipes import RECIPES_DIR, load_recipe

    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        r = load_recipe(path)
        first = r.description.splitlines()[0] if r.description else ""
        print(f"{path.stem:20s} {len(r.stages)} stages  {first}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..recipes import load_recipe

    r = load_recipe(args.recipe)
    print(f"{r.name} ({r.path})\n{r.description}\n\nvariables:")
    for k, v in r.vars.items():
        print(f"  {k} = {'<required>' if v is None else v}")
    for name, values in r.variants.items():
        print(f"\nvariant {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    print("\nstages:")
    for s in r.stages:
        print(
            f"  {s.index:2d} {s.name:18s} "
            + " && ".join(f"tts-adapt {r}" for r in (s.run if isinstance(s.run, list) else [s.run]))
            + (f"   [launcher: {s.launcher}]" if s.launcher else "")
            + (f"   [matrix: {', '.join(f'{k}={v}' for k, v in s.matrix.items())}]" if s.matrix else "")
            + (f"   [when: {s.when}]" if s.when else "")
        )
    return 0


def run_run(args: argparse.Namespace) -> int:
    from ..recipes import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    ran = run_recipe(
        recipe,
        args.out,
        _overrides(args.set),
        args.stage,
        args.stop_stage,
        only,
        args.force,
        args.dry_run,
        args.variant,
    )
    if not ran:
        print(f"nothing to do: every selected stage of {recipe.name} is finished in {args.out}")
    return 0
