"""One ``--help`` format for every command line of the package (the CLI and the ``python -m`` tools)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is nothing to show (None, off, empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if action.help and "default" in action.help:
            return action.help  # says its default in its own words
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


__all__ = ["HelpFormatter"]
