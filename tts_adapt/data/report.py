"""What was skipped and why, so that one bad file never ends a long job and never goes unnoticed.

Every reader and the preparation step take a :class:`SkipReport`. In the default mode a problem is
recorded (and logged) and the utterance is left out; with ``strict=True`` the first problem raises a
:class:`BadInputError` naming the file. The report is saved as JSON lines, one object per problem.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ..utils.io import write_text

log = logging.getLogger(__name__)

# Short machine-readable reason codes used across readers and preparation.
REASONS = {
    "audio_not_found": "audio file does not exist",
    "unreadable_audio": "audio could not be decoded",
    "bad_channels": "unexpected number of channels",
    "non_finite": "audio contains NaN or infinite samples",
    "silent": "audio is silent or nearly so",
    "too_short": "shorter than the minimum duration",
    "too_long": "longer than the maximum duration",
    "missing_transcript": "no transcript found for the audio",
    "empty_transcript": "transcript is empty",
    "empty_phonemes": "no usable phoneme symbols after phonemisation",
    "bad_line": "malformed line in a list file",
    "clipped": "many samples at full scale (kept)",
    "unknown_symbols": "characters outside the symbol table were dropped (kept)",
}


class BadInputError(ValueError):
    """Raised in strict mode; a ``ValueError`` so the CLI prints it as a one-line error."""


@dataclass(frozen=True)
class Problem:
    id: str
    path: str
    code: str
    reason: str
    action: str  # "skipped" or "kept"


class SkipReport:
    """Collects skipped (and suspicious but kept) utterances for one run."""

    def __init__(self, strict: bool = False, path: str | os.PathLike | None = None) -> None:
        self.strict = strict
        self.path = Path(path) if path else None
        self.problems: list[Problem] = []

    def skip(self, utt_id: str, path: str | os.PathLike, code: str, detail: str = "") -> None:
        """Record that an utterance is left out; in strict mode raise instead."""
        reason = detail or REASONS.get(code, code)
        if self.strict:
            where = "" if str(path) in reason else f"{path}: "
            raise BadInputError(f"{where}{reason} [{code}] (strict mode; rerun without --strict to skip it)")
        self.problems.append(Problem(str(utt_id), str(path), code, reason, "skipped"))
        log.debug("skipping %s (%s): %s", utt_id, path, reason)

    def warn(self, utt_id: str, path: str | os.PathLike, code: str, detail: str = "") -> None:
        """Record something suspicious about an utterance that is still used (never raises)."""
        reason = detail or REASONS.get(code, code)
        self.problems.append(Problem(str(utt_id), str(path), code, reason, "kept"))
        log.debug("warning for %s (%s): %s", utt_id, path, reason)

    @property
    def skipped(self) -> list[Problem]:
        return [p for p in self.problems if p.action == "skipped"]

    def counts(self, action: str = "skipped") -> Counter:
        return Counter(p.code for p in self.problems if p.action == action)

    def summary(self) -> str:
        """One line such as ``skipped 3: 2 too_short, 1 silent; kept with warnings 1: 1 clipped``."""
        parts = []
        for action, label in (("skipped", "skipped"), ("kept", "kept with warnings")):
            c = self.counts(action)
            if c:
                detail = ", ".join(f"{n} {code}" for code, n in c.most_common())
                parts.append(f"{label} {sum(c.values())}: {detail}")
        return "; ".join(parts) if parts else "no problems"

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the report atomically as JSON lines (to ``path`` or the path given at construction)."""
        target = Path(path) if path else self.path
        if target is None:
            return None
        write_text(target, "".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in self.problems))
        return target

    def extend(self, other: SkipReport) -> None:
        self.problems.extend(other.problems)


def require_usable(n_usable: int, n_total: int, report: SkipReport, what: str) -> None:
    """A corpus with nothing usable is an error that says why, not an empty training run."""
    if n_usable > 0:
        return
    where = f"; details in {report.path}" if report.path else ""
    if n_total == 0:
        raise ValueError(f"{what}: no utterances found")
    raise ValueError(f"{what}: none of {n_total} utterances is usable ({report.summary()}){where}")
