"""The fixed, seeded test set: which utterances are spoken, by whom, from which reference prompt.

Two parts:

* ``target``: held-out recordings of the adaptation speaker (never used for training). Each case
  re-speaks one recording's text, with a *different* recording of the same speaker as the reference.
* ``heldout``: speakers the adapted model never saw, in zero-shot mode: the same construction per
  speaker. This is the multi-speaker ability that adaptation must not destroy.

Every case has its own synthesis seed derived from the global seed and the case id, so a system
gives the same audio whatever order or subset of cases is run.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.utterance import Utterance, sort_utterances


@dataclass(frozen=True)
class TestCase:
    set: str  # "target" or "heldout"
    id: str
    speaker: str
    text: str
    audio_path: str  # ground truth of this text by this speaker
    prompt_id: str
    prompt_path: str  # the reference audio handed to the synthesiser
    seed: int
    phonemes: str | None = None

    @property
    def key(self) -> str:
        return f"{self.set}/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_utterances(records: Iterable[Any]) -> list[Utterance]:
    """Accept ``Utterance`` objects, dicts or ``(id, audio_path, text, speaker)`` tuples."""
    out = []
    for r in records:
        if isinstance(r, Utterance):
            out.append(r)
        elif isinstance(r, dict):
            try:
                out.append(
                    Utterance(
                        str(r["id"]),
                        Path(r["audio_path"]),
                        str(r["text"]),
                        str(r["speaker"]),
                        phonemes=r.get("phonemes"),
                    )
                )
            except KeyError as e:
                raise ValueError(f"corpus record {r!r} lacks field {e}") from e
        elif isinstance(r, (tuple, list)) and len(r) >= 4:
            out.append(Utterance(str(r[0]), Path(r[1]), str(r[2]), str(r[3])))
        elif all(hasattr(r, a) for a in ("id", "audio_path", "text", "speaker")):
            out.append(
                Utterance(
                    str(r.id),
                    Path(r.audio_path),
                    str(r.text),
                    str(r.speaker),
                    phonemes=getattr(r, "phonemes", None),
                )
            )
        else:
            raise ValueError(f"cannot read corpus record {r!r}: expected id, audio_path, text, speaker")
    return out


def case_seed(seed: int, key: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode("utf-8"))) % (2**31 - 1)


def _cases_for_speaker(utts: Sequence[Utterance], n: int, set_name: str, seed: int) -> list[TestCase]:
    if len(utts) < 2:
        raise ValueError(
            f"speaker {utts[0].speaker if utts else '?'} has {len(utts)} recording(s); a test case needs the "
            "utterance plus a different recording as its reference"
        )
    utts = sort_utterances(utts)
    rng = np.random.default_rng([seed, zlib.crc32(f"{set_name}/{utts[0].speaker}".encode())])
    order = rng.permutation(len(utts))
    chosen = order[: min(n, len(utts))]
    cases = []
    for i in chosen:
        u = utts[int(i)]
        others = [j for j in range(len(utts)) if j != int(i)]
        p = utts[others[int(rng.integers(len(others)))]]
        key = f"{set_name}/{u.id}"
        cases.append(
            TestCase(
                set_name,
                u.id,
                u.speaker,
                u.text,
                str(u.audio_path),
                p.id,
                str(p.audio_path),
                case_seed(seed, key),
                u.phonemes,
            )
        )
    return cases


def build_test_set(
    target: Iterable[Any] | None,
    heldout: Iterable[Any] | None,
    n_target: int = 20,
    n_heldout_per_speaker: int = 5,
    seed: int = 0,
    target_speaker: str | None = None,
) -> list[TestCase]:
    """Seeded cases for the target speaker and for each held-out speaker (see module docstring)."""
    cases: list[TestCase] = []
    if target is not None:
        t_utts = as_utterances(target)
        speakers = sorted({u.speaker for u in t_utts})
        if target_speaker is None:
            if len(speakers) != 1:
                raise ValueError(f"the target corpus has speakers {speakers}; name one with --target-speaker")
            target_speaker = speakers[0]
        mine = [u for u in t_utts if u.speaker == target_speaker]
        if not mine:
            raise ValueError(
                f"target speaker {target_speaker!r} not in the target corpus (speakers: {speakers})"
            )
        cases += _cases_for_speaker(mine, n_target, "target", seed)
    if heldout is not None:
        groups: dict[str, list[Utterance]] = {}
        for u in as_utterances(heldout):
            if u.speaker != target_speaker:
                groups.setdefault(u.speaker, []).append(u)
        if not groups:
            raise ValueError("the held-out corpus has no speaker other than the target")
        for spk in sorted(groups):
            cases += _cases_for_speaker(groups[spk], n_heldout_per_speaker, "heldout", seed)
    if not cases:
        raise ValueError("empty test set: give a target corpus, a held-out corpus, or both")
    return cases


def write_test_set(path: str | os.PathLike, cases: Sequence[TestCase]) -> None:
    from ..utils.io import write_text

    write_text(path, "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in cases))


def read_test_set(path: str | os.PathLike) -> list[TestCase]:
    cases = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    cases.append(TestCase(**json.loads(line)))
                except (TypeError, json.JSONDecodeError) as e:
                    raise ValueError(f"{path}:{n}: not a test-case record ({e})") from e
    return cases
