"""``tts-adapt`` command line.

Every module in this package that defines ``register(subparsers)`` contributes sub-commands, so a
feature's CLI lives next to nothing but itself. Heavy imports happen inside each command's handler,
which keeps ``tts-adapt --help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from ..utils.help import HelpFormatter
from ..utils.logging import setup_logging


class Parser(argparse.ArgumentParser):
    """Every (sub-)command's parser: one help format for all, set here and nowhere else."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """A command without its own description is described by its one-line help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if not child.description and helps.get(name):
                    child.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe_commands(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tts-adapt",
        description="Adapt StyleTTS 2 to a new speaker without forgetting (LoRA + Laplace prior).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    _describe_commands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(-1 if args.quiet else args.verbose)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as e:
        if args.verbose > 1:
            raise
        logging.getLogger("tts_adapt").debug("command failed", exc_info=True)
        print(f"tts-adapt {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        from ..utils.io import is_disk_full

        if not is_disk_full(e) or args.verbose > 1:
            raise
        where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
        print(f"tts-adapt {args.command}: error: no space left on device{where}: {e}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
