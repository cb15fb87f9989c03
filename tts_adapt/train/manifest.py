"""An adapted-model folder's ``manifest.json``: read by loading, the base check and the forgetting runs,
so it sits apart from both the folder's writer (:mod:`.artifacts`) and the base check
(:mod:`.provenance`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def read_manifest(out: str | os.PathLike) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{out} is not an adapted-model folder (no {MANIFEST}); run 'tts-adapt adapt'"
        )
    return json.loads(path.read_text(encoding="utf-8"))
