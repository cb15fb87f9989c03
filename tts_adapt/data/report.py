"""What was skipped and why, so that one bad file never ends a long job and never goes unnoticed.

Every reader and the preparation step take a :class:`SkipReport`. In the default mode a problem is
recorded (and logged) and the utterance is left out; with ``strict=True`` the first problem raises a
:class:`BadInputError` naming the file. The report is saved as JSON lines, one object per problem.

Every command that reads data keeps one report through reading, selection and preparation and ends
with the same one-line account (:meth:`SkipReport.line`): how many utterances were found, how many
are used, how many were skipped for each reason and how many were left out by a selection option
(``--speakers``, ``--limit``, ``--max-utterances``); used + skipped + not selected = found.
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
    "unsupported_text": "transcript has characters the English front end cannot read",
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
        self.found: int | None = None  # utterances the reader found, set by :meth:`count_found`
        self.not_selected: Counter = Counter()  # left out on purpose, by option

    def count_found(self, returned: int) -> None:
        """Record what reading found: the ``returned`` utterances plus those skipped while reading."""
        self.found = returned + len(self.skipped)

    def leave_out(self, option: str, before: int, after: int) -> None:
        """Record that a selection option (``--limit``...) kept ``after`` of ``before`` utterances."""
        if before > after:
            self.not_selected[option] += before - after

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

    def line(self, used: int, hours: float | None = None, speakers: int | None = None) -> str:
        """The one-line account every data-reading command prints.

        ``data: 10 of 20 utterances used (0.01 h, 2 speakers); skipped 5: 3 too_long, 2 silent;
        not selected 5: 5 --max-utterances; report: out/data_report.jsonl``
        """
        skipped = self.counts("skipped")
        n_skipped, n_out = sum(skipped.values()), sum(self.not_selected.values())
        found = self.found if self.found is not None else used + n_skipped + n_out
        extra = ", ".join(
            x
            for x in (
                f"{hours:.2f} h" if hours is not None else "",
                f"{speakers} speakers" if speakers else "",
            )
            if x
        )
        parts = [f"data: {used} of {found} utterances used" + (f" ({extra})" if extra else "")]
        if n_skipped:
            parts.append(f"skipped {n_skipped}: " + ", ".join(f"{n} {c}" for c, n in skipped.most_common()))
        if n_out:
            detail = ", ".join(f"{n} {o}" for o, n in self.not_selected.most_common())
            parts.append(f"not selected {n_out}: {detail}")
        kept = self.counts("kept")
        if kept:
            detail = ", ".join(f"{n} {c}" for c, n in kept.most_common())
            parts.append(f"kept with warnings {sum(kept.values())}: {detail}")
        if used + n_skipped + n_out != found:
            parts.append(f"{found - used - n_skipped - n_out} unaccounted for")
            log.warning("data accounting does not add up: %s", "; ".join(parts))
        if self.path is not None:
            parts.append(f"report: {self.path}")
        return "; ".join(parts)

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the report atomically as JSON lines (to ``path`` or the path given at construction)."""
        target = Path(path) if path else self.path
        if target is None:
            return None
        write_text(target, "".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in self.problems))
        return target

    def extend(self, other: SkipReport) -> None:
        self.problems.extend(other.problems)
        self.not_selected.update(other.not_selected)


def require_usable(n_usable: int, n_total: int, report: SkipReport, what: str) -> None:
    """A corpus with nothing usable is an error that says why, not an empty training run."""
    if n_usable > 0:
        return
    where = f"; details in {report.path}" if report.path else ""
    if n_total == 0:
        raise ValueError(f"{what}: no utterances found")
    raise ValueError(f"{what}: none of {n_total} utterances is usable ({report.summary()}){where}")
