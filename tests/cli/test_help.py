"""``--help`` of every command: each option explains itself and shows its default.

argparse renders ``%%`` as ``%`` only inside option help (it %-formats help strings, not
descriptions), so a literal ``%%`` in rendered help is always a mistake the user sees.
"""

from __future__ import annotations

import argparse

import pytest

from tts_adapt.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every parser reachable from ``parser`` with its command path (``("recipe", "run")``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))


PARSERS = dict(walk(build_parser()))


def test_walk_reaches_every_command():
    names = {p[0] for p in PARSERS if p}
    assert {"synth", "evaluate", "adapt", "curvature", "recipe", "init-model", "export"} <= names
    assert ("recipe", "run") in PARSERS


@pytest.mark.parametrize("path", sorted(PARSERS), ids=lambda p: " ".join(p) or "tts-adapt")
def test_every_option_has_help_and_shows_its_default(path):
    parser = PARSERS[path]
    text = parser.format_help()
    assert "%%" not in text, f"'%%' printed in: tts-adapt {' '.join(path)} --help"
    if path:
        assert parser.description, f"tts-adapt {' '.join(path)} has no description"
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"tts-adapt {' '.join(path)}: {name} has no help"
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and action.option_strings and "default" not in action.help:
            # argparse.ArgumentDefaultsHelpFormatter's own wording, "(default: %(default)s)"
            flat = " ".join(text.split())
            assert f"(default: {action.default})" in flat, f"{name}'s default not shown"


def test_described_commands():
    assert "95%" in PARSERS[("evaluate",)].format_help()
    assert PARSERS[("synth",)].description


@pytest.mark.parametrize("module", ["pitch_following", "reconstruction"])
def test_module_tools_share_the_help_format(module, capsys):
    """The ``python -m tts_adapt.evaluation.*`` tools: a default written in the help's own words is not
    repeated as argparse's "(default: None)", and real defaults are shown."""
    import importlib

    tool = importlib.import_module(f"tts_adapt.evaluation.{module}")
    with pytest.raises(SystemExit) as stop:
        tool.main(["--help"])
    assert stop.value.code == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in flat
    assert "(default: 2)" in flat or "(default: 0.5,1.0,2.0)" in flat


@pytest.mark.parametrize("path", sorted(PARSERS), ids=lambda p: " ".join(p) or "tts-adapt")
def test_every_default_is_written_one_way(path):
    """A default stated in an option's own words reads ``(default: X)``, as argparse writes the others:
    not "(default X)", "; default X" or "X (default)". A spec value (``styletts2:default``) and a
    key (``default=1e3``) are not statements of a default."""
    import re

    for action in PARSERS[path]._actions:
        text = action.help or ""
        for m in re.finditer(r"\bdefault\b", text):
            before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 2]
            if before == ":" or after.startswith("="):
                continue
            assert before == "(" and after == ": ", (
                f"tts-adapt {' '.join(path)} {'/'.join(action.option_strings)}: "
                f"...{text[max(0, m.start() - 40) : m.end() + 20]}..."
            )


def test_help_imports_no_torch():
    """``tts-adapt --help`` and every command's parser load no deep-learning stack: 0.6 s and 36 MB
    instead of 3.1 s and 656 MB when torch came in through the shipped-voice names, the F0 source
    names and the evaluation protocol's metric names."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tts_adapt.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print(','.join(m for m in ('torch', 'yaml', 'transformers', 'peft', 'librosa', 'scipy') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported while building the parser: {out.stdout.strip()}"
