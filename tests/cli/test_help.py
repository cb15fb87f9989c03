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
