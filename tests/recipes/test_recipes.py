"""Recipes: the bundled ones parse into valid commands; the runner is staged and resumable."""

from __future__ import annotations

import shlex
import shutil

import pytest

from tts_adapt.cli import build_parser, main
from tts_adapt.recipes import RECIPES_DIR, RecipeError, StageFailed, load_recipe, run_recipe


@pytest.mark.parametrize("path", sorted(RECIPES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_recipes_are_valid_commands(path, tmp_path):
    """Every stage of every bundled recipe is accepted by our own CLI parser (catches typos in flags)."""
    recipe = load_recipe(path)
    for variant in [None, *recipe.variants]:
        values = recipe.resolve(tmp_path, {k: "X" for k, v in recipe.vars.items() if v is None}, variant)
        parser = build_parser()
        for stage in recipe.expand(values):
            for argv in recipe.commands(stage, values):
                args = parser.parse_args(argv)
                assert callable(args.func), stage.name


def test_the_smoke_report_explains_itself(tmp_path):
    """The smoke recipe's report names a note beside the recipe ({recipe_dir}) saying what 10 steps can
    and cannot show."""
    recipe = load_recipe("smoke")
    values = recipe.resolve(tmp_path)
    (report,) = [s for s in recipe.expand(values) if s.name == "report"]
    argv = recipe.command(report, values)
    note = argv[argv.index("--note") + 1]
    assert note == str(RECIPES_DIR.resolve() / "smoke_report_note.md")
    text = open(note, encoding="utf-8").read()
    assert "Ten optimiser steps" in text and "cannot" in text


def write(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


RECIPE = """
name: tiny
vars:
  seed: 0
  speaker: null
stages:
  - name: corpus
    run: make-corpus --speakers 2 --utterances 3 --seed {seed} --out {out}/corpus
  - name: split
    run: >-
      split-data --data {out}/corpus --speakers {speaker} --test 1
      --train-out {out}/train.txt --test-out {out}/test.txt
"""


def test_runs_resumes_and_reruns_changed_stages(tmp_path, capsys):
    recipe = load_recipe(write(tmp_path, RECIPE))
    out = tmp_path / "run"
    with pytest.raises(RecipeError, match="--set speaker="):
        run_recipe(recipe, out)
    assert run_recipe(recipe, out, {"speaker": "9000"}) == ["01-corpus", "02-split"]
    assert (out / "train.txt").read_text().count("\n") == 2 and (out / "test.txt").exists()
    assert (out / "logs" / "02-split.log").read_text().count("2 train / 1 test") == 1
    # finished stages are skipped; a changed command runs again
    assert run_recipe(recipe, out, {"speaker": "9000"}) == []
    assert run_recipe(recipe, out, {"speaker": "9001"}) == ["02-split"]
    assert "9001" in (out / "train.txt").read_text()
    assert run_recipe(recipe, out, {"speaker": "9001"}, only=["corpus"], force=True) == ["01-corpus"]


def test_relative_out_folder(tmp_path, monkeypatch):
    """``--out exp/x`` as typed in a shell: the lists a stage writes are read by later stages."""
    from tts_adapt.data import read_filelist

    monkeypatch.chdir(tmp_path)
    assert run_recipe(load_recipe(write(tmp_path, RECIPE)), "exp/run", {"speaker": "9000"})
    (utt,) = read_filelist(tmp_path / "exp" / "run" / "test.txt")
    assert utt.audio_path.is_file() and utt.duration


@pytest.mark.slow
def test_smoke_recipe_as_the_readme_runs_it(tmp_path, monkeypatch):
    """The README's first run, whole (about 3 minutes on 2 cores): every stage, then the report."""
    import json

    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "run", "smoke", "--out", "exp/smoke"]) == 0
    out = tmp_path / "exp" / "smoke"
    aggregates = json.loads((out / "eval" / "aggregates.json").read_text())
    assert {"base", "lora", "lora-kfac"} <= set(aggregates["systems"])
    html = (out / "report.html").read_text()
    assert "lora-kfac" in html and "<audio" in html
    assert main(["recipe", "run", "smoke", "--out", "exp/smoke"]) == 0  # finished: nothing runs again


def test_failed_stage_leaves_no_stamp(tmp_path):
    recipe = load_recipe(write(tmp_path, RECIPE))
    out = tmp_path / "run"
    with pytest.raises(StageFailed, match="02-split failed"):
        run_recipe(recipe, out, {"speaker": "nobody"})
    assert (out / "stages" / "01-corpus.done.json").exists()
    assert not (out / "stages" / "02-split.done.json").exists()
    assert "nobody" in (out / "logs" / "02-split.log").read_text()


def test_cli_dry_run_and_selection(tmp_path, capsys):
    path = write(tmp_path, RECIPE)
    assert (
        main(
            [
                "recipe",
                "run",
                str(path),
                "--out",
                str(tmp_path / "o"),
                "--set",
                "speaker=9000",
                "--stage",
                "2",
                "--dry-run",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "[02-split]" in printed and "[01-corpus]" not in printed
    assert shlex.split(printed.split("]", 1)[1])[-4:] == [
        "--train-out",
        f"{tmp_path}/o/train.txt",
        "--test-out",
        f"{tmp_path}/o/test.txt",
    ]
    assert main(["recipe", "run", str(path), "--out", str(tmp_path / "o"), "--set", "nope=1"]) == 1
    assert "unknown variable" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text,message",
    [
        ("stages: []", "non-empty list"),
        ("stages:\n  - name: a\n", "needs 'name' and 'run'"),
        ("stages:\n  - {name: a, run: x}\n  - {name: a, run: y}\n", "two stages are named"),
        ("stages:\n  - {name: 'a b', run: x}\n", "may only use"),
        ("stages:\n  - {name: a, run: x, retries: 3}\n", "unknown field"),
        ("vars: {out: x}\nstages:\n  - {name: a, run: x}\n", "reserved"),
        ("stages:\n  - {name: a, run: 'x {undefined}'}\n", "unknown variable"),
    ],
)
def test_bad_recipes_are_named(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        recipe = load_recipe(write(tmp_path, text))
        recipe.command(recipe.stages[0], recipe.resolve(tmp_path / "o"))


GRID = """
name: grid
vars:
  lambdas: "1,10"
  seeds: [0, 1]
  extra: ""
  big: "false"
  where: "{out}/w"
variants:
  quick: {lambdas: "5", big: "yes"}
stages:
  - name: make
    run: make-corpus --speakers 1 --utterances 2 --seed {seed} --out {where}/l{lam}-s{seed}
    matrix: {lam: "{lambdas}", seed: "{seeds}"}
  - name: none
    matrix: {seed: "{extra}"}
    run: make-corpus --speakers 2 --utterances 3 --seed {seed} --out {out}/x
  - name: only-big
    when: "{big}"
    run: make-corpus --speakers 2 --utterances 3 --out {out}/big
"""


def test_matrix_expands_to_the_product_in_order(tmp_path):
    """Grid points = itertools.product of the axes as written; each one a stage with its own command."""
    import itertools

    recipe = load_recipe(write(tmp_path, GRID))
    values = recipe.resolve(tmp_path / "o")
    assert values["where"] == f"{tmp_path}/o/w" and values["seeds"] == "0,1"
    stages = recipe.expand(values)
    expected = [f"make.lam-{lam}.seed-{s}" for lam, s in itertools.product(["1", "10"], ["0", "1"])]
    assert [s.name for s in stages] == expected  # empty axis: no stage; when false: left out
    assert {s.tag[:3] for s in stages} == {"01-"} and {s.family for s in stages} == {"make"}
    argv = recipe.command(stages[3], values)
    assert argv[argv.index("--seed") + 1] == "1" and argv[-1] == f"{tmp_path}/o/w/l10-s1"
    quick = recipe.expand(recipe.resolve(tmp_path / "o", {"seeds": "3"}, "quick"))
    assert [s.name for s in quick] == ["make.lam-5.seed-3", "only-big"]


def test_matrix_points_resume_one_by_one(tmp_path):
    recipe = load_recipe(write(tmp_path, GRID))
    out = tmp_path / "run"
    over = {"lambdas": "1", "seeds": "0"}
    assert run_recipe(recipe, out, over) == ["01-make.lam-1.seed-0"]
    assert (out / "stages" / "01-make.lam-1.seed-0.done.json").is_file()
    assert any((out / "w" / "l1-s0").iterdir())
    # a wider grid runs only the new points; --only by YAML name selects every point of it
    assert run_recipe(recipe, out, {"lambdas": "1", "seeds": "0,1"}) == ["01-make.lam-1.seed-1"]
    assert run_recipe(
        recipe, out, {"lambdas": "1", "seeds": "0,1"}, only=["make"], dry_run=True, force=True
    ) == [
        "01-make.lam-1.seed-0",
        "01-make.lam-1.seed-1",
    ]
    assert run_recipe(
        recipe, out, {"lambdas": "1", "seeds": "0,1"}, only=["make.lam-1.seed-1"], dry_run=True, force=True
    ) == ["01-make.lam-1.seed-1"]
    # the tag as the stages/ folder names it picks the same point
    assert run_recipe(
        recipe, out, {"lambdas": "1", "seeds": "0,1"}, only=["01-make.lam-1.seed-1"], dry_run=True, force=True
    ) == ["01-make.lam-1.seed-1"]


@pytest.mark.parametrize(
    "text,message",
    [
        ("stages:\n  - {name: a, run: x, matrix: [1, 2]}\n", "must map axis names"),
        ("stages:\n  - {name: a, run: x, matrix: {out: [1]}}\n", "not a usable name"),
        ("vars: {k: 1}\nstages:\n  - {name: a, run: x, matrix: {k: [1]}}\n", "also a variable"),
        ("stages:\n  - {name: a, run: 'x {k}', matrix: {k: [1, 1]}}\n", "repeated value"),
        ("stages:\n  - {name: a, run: 'x {k}', matrix: {k: '{nope}'}}\n", "unknown variable"),
        ("vars: {a: '{b}', b: '{a}'}\nstages:\n  - {name: s, run: x}\n", "cycle"),
        ("variants: {q: {zz: 1}}\nstages:\n  - {name: s, run: x}\n", "unknown variable"),
    ],
)
def test_bad_grids_are_named(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        recipe = load_recipe(write(tmp_path, text))
        recipe.expand(recipe.resolve(tmp_path / "o"))


def test_cli_quick_variant(tmp_path, capsys):
    path = write(tmp_path, GRID)
    assert main(["recipe", "run", str(path), "--out", str(tmp_path / "o"), "--quick", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "[01-make.lam-5.seed-0]" in printed and "[03-only-big]" in printed and "lam-10" not in printed
    assert main(["recipe", "run", str(path), "--out", str(tmp_path / "o"), "--variant", "nope"]) == 1
    assert "no variant 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_quickstart_recipe_as_the_readme_runs_it(kokoro_paths, tmp_path, monkeypatch):
    """The README's main run, every stage at smaller sizes (4 steps, 8 + 3 target utterances; the full
    run takes 10 minutes): Piper's joe, Kokoro's own speech, KFAC, the voice alone and LoRA + KFAC, the
    evaluation with stock voices, the report with its note. The voice-only model keeps every stock voice
    exactly (retention 1.0: no weight moved); LoRA + KFAC moved the weights, so its clips differ."""
    import json

    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng")
    pytest.importorskip("piper", reason="needs piper-tts (tts-adapt[engines])")
    monkeypatch.chdir(tmp_path)
    argv = ["recipe", "run", "quickstart", "--out", "exp/quick"]
    argv += ["--set", "steps=4", "--set", "target_utterances=8", "--set", "test_utterances=3"]
    assert main(argv) == 0
    out = tmp_path / "exp" / "quick"
    systems = json.loads((out / "eval" / "aggregates.json").read_text())["systems"]
    assert {"ground_truth", "base", "voice", "lora-kfac"} <= set(systems)
    assert systems["voice"]["stock"]["retention"]["mean"] == 1.0
    assert systems["lora-kfac"]["stock"]["retention"]["mean"] < 1.0
    assert systems["voice"]["sets"]["target"]["sim"]["mean"] > 0
    html = (out / "report.html").read_text()
    assert "id='stock_summary'" in html and "What this page shows" in html and "<audio" in html
    assert main(argv) == 0  # finished: nothing runs again


NESTED = """
name: nested
vars:
  targets: "joe,slt"
  start_joe: am_michael
  start_slt: af_nova
  lr_full: 1e-4
  lr_lora: 1e-3
stages:
  - name: adapt
    matrix: {target: "{targets}", method: [full, lora]}
    run: adapt --voice-init {start_{target}} --lr {lr_{method}} --out {out}/{target}-{method}
  - name: summary
    always: true
    run: split-data --data {out}/corpus --train-out {out}/a.txt --test-out {out}/b.txt
"""


def test_a_grid_value_picks_a_variable(tmp_path):
    """``{start_{target}}``: the inner field is filled first, then the variable it names."""
    recipe = load_recipe(write(tmp_path, NESTED))
    values = recipe.resolve(tmp_path / "o")
    got = {s.name: recipe.command(s, values) for s in recipe.expand(values)}
    slt_lora = got["adapt.target-slt.method-lora"]
    assert slt_lora[slt_lora.index("--voice-init") + 1] == "af_nova"
    assert slt_lora[slt_lora.index("--lr") + 1] == "1e-3"
    joe_full = got["adapt.target-joe.method-full"]
    assert joe_full[joe_full.index("--voice-init") + 1] == "am_michael"
    assert joe_full[joe_full.index("--lr") + 1] == "1e-4"
    bad = load_recipe(write(tmp_path, NESTED.replace("start_slt: af_nova", "other: 1")))
    with pytest.raises(RecipeError, match=r"unknown variable\(s\) \{start_slt\}"):
        values = bad.resolve(tmp_path / "o")
        [bad.commands(s, values) for s in bad.expand(values)]


CHEAP = """
name: cheap
vars:
  which: smoke
stages:
  - name: show
    run: recipe show {which}
  - name: again
    always: true
    run: recipe list
"""


def test_always_stages_run_on_every_call_and_the_plan_names_every_stage(tmp_path):
    import json
    import os

    recipe = load_recipe(write(tmp_path, CHEAP))
    out = tmp_path / "run"
    assert run_recipe(recipe, out) == ["01-show", "02-again"]
    plan_file = out / "stages" / "plan.json"
    written = plan_file.read_bytes()
    plan_file.touch()
    os.utime(plan_file, (1, 1))  # a rewrite would move the time on
    assert run_recipe(recipe, out) == ["02-again"]
    assert plan_file.stat().st_mtime == 1 and plan_file.read_bytes() == written, "unchanged plan rewritten"
    # the plan lists the whole recipe even when --only runs part of it
    run_recipe(recipe, out, {"which": "forgetting"}, only=["again"])
    plan = json.loads((out / "stages" / "plan.json").read_text())
    assert [s["tag"] for s in plan["stages"]] == ["01-show", "02-again"]
    assert plan["values"]["which"] == "forgetting"
    with pytest.raises(RecipeError, match="'always' must be true or false"):
        load_recipe(write(tmp_path, CHEAP.replace("always: true", "always: yes please")))
