"""One logging setup for the CLI: readable on a terminal, optionally mirrored to a run's log file."""

from __future__ import annotations

import logging
import os


def setup_logging(verbosity: int = 0, log_file: str | os.PathLike | None = None) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )


def add_file_log(path: str | os.PathLike) -> logging.Handler:
    """Mirror the package's log records into ``path`` (appending, so resumed runs keep one log)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("tts_adapt").addHandler(handler)
    if logging.getLogger("tts_adapt").level == logging.NOTSET:
        logging.getLogger("tts_adapt").setLevel(logging.INFO)
    return handler
