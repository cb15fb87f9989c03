"""Progress bars that read well wherever the output goes.

On a terminal a tqdm bar redraws itself in place with carriage returns. Written to a file, or read line
by line by the recipe runner, every redraw becomes a line of its own between the log records (the smoke
recipe's log had 302 lines, most of them bars). So where stderr is not a terminal the same progress is
one plain line at every tenth of the work (every minute when the total is unknown) and one at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm as _std_tqdm

UNKNOWN_TOTAL_EVERY_S = 60.0


class _NoBareNewline:
    """A stream that passes whole lines and drops the lone newline or carriage return tqdm writes on
    closing a bar (a plain line already ended itself)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text in ("\n", "\r", ""):
            return 0
        return self.stream.write(text)

    def flush(self) -> None:
        getattr(self.stream, "flush", lambda: None)()


class LineProgress(_std_tqdm):
    """tqdm that prints plain, newline-ended status lines: at 0 %, at every further tenth, at the end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._shown_tenth = -1
        self._shown_n: float | None = None
        self._shown_at = 0.0
        self._closing = False
        super().__init__(*args, **kwargs)
        if not self.disable:
            self.fp = _NoBareNewline(self.fp)

    def close(self) -> None:
        self._closing = True  # tqdm marks a closing bar disabled before its last display
        super().close()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if (self.disable and not self._closing) or msg == "":
            return True
        n, total = self.n, self.total
        if self._shown_n == n:
            return True
        if total:
            tenth = int(10 * n / total)
            if tenth == self._shown_tenth and n < total:
                return True
            self._shown_tenth = tenth
        else:
            now = time.monotonic()
            if self._shown_n is not None and now - self._shown_at < UNKNOWN_TOTAL_EVERY_S and pos != 0:
                return True
            self._shown_at = now
        self._shown_n = n
        self.fp.write((msg or self.format_meter(**self.format_dict)).strip("\r") + "\n")
        self.fp.flush()
        return True


def on_terminal(stream=None) -> bool:
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(*args: Any, **kwargs: Any):
    """``tqdm.auto.tqdm(...)`` on a terminal, :class:`LineProgress` (same arguments) elsewhere."""
    if on_terminal(kwargs.get("file")):
        from tqdm.auto import tqdm

        return tqdm(*args, **kwargs)
    return LineProgress(*args, **kwargs)
