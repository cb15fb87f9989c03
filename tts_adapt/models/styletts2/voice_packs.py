"""Voice packs: the style source of a StyleTTS 2 without style encoders (Kokoro-82M).

A pack holds one style vector per text length: row ``n - 1`` is the style for a text of ``n`` phoneme
tokens (the two boundary tokens not counted), ``[acoustic, prosodic]`` halves as in ``ref_s``. Kokoro's
runtimes look the row up the same way, capped at the last row.

Files: raw little-endian float32 ``[rows, 1, width]`` (``.bin``, kokoro-js), a torch tensor (``.pt``,
Kokoro's own voices, read with ``weights_only=True``), a NumPy archive of named packs (``.npz``, or
kokoro-onnx's ``voices-*.bin``, which is one), or safetensors (one pack, or named packs). A voice spec
names packs of a bundle and may blend them: ``af_heart``, ``af_heart:0.6,bf_emma:0.4`` (weighted sum,
weights as given) or ``af_heart,bf_emma`` (equal weights).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PACK_SUFFIXES = (".bin", ".pt", ".pth", ".npz", ".safetensors")


@dataclass
class VoicePack:
    """``styles [rows, width]`` float32 and a name for messages and reports."""

    styles: torch.Tensor
    name: str = "voice"

    def __post_init__(self) -> None:
        s = self.styles
        if s.dim() == 3 and s.shape[1] == 1:
            s = s[:, 0]
        if s.dim() != 2 or s.shape[0] < 1:
            raise ValueError(
                f"voice pack {self.name}: expected styles of shape [rows, 1, width] or [rows, width], "
                f"got {tuple(self.styles.shape)}"
            )
        if not torch.isfinite(s).all():
            raise ValueError(f"voice pack {self.name} holds non-finite values")
        self.styles = s.float().contiguous()

    @property
    def width(self) -> int:
        return int(self.styles.shape[1])

    def style_for(self, n_tokens: int) -> torch.Tensor:
        """``[1, width]``: the row for a text of ``n_tokens`` phoneme tokens (boundary tokens excluded)."""
        row = min(max(int(n_tokens), 1), self.styles.shape[0]) - 1
        return self.styles[row : row + 1]

    def check_width(self, width: int) -> VoicePack:
        if self.width != width:
            raise ValueError(
                f"voice pack {self.name} has style width {self.width}; this model takes {width} "
                "(2 x style_dim)"
            )
        return self


def _from_array(array: np.ndarray | torch.Tensor, name: str) -> VoicePack:
    return VoicePack(torch.as_tensor(np.asarray(array, dtype=np.float32)), name)


def read_bundle(path: str | os.PathLike) -> dict[str, VoicePack]:
    """Every pack in a file, by name (a single-pack file gives one entry named after the file)."""
    from ...utils.io import load_tensors, safe_torch_load

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"voice pack not found: {p}")
    if zipfile.is_zipfile(p) and p.suffix in (".npz", ".bin"):
        with np.load(p) as z:
            return {k: _from_array(z[k], k) for k in z.files}
    if p.suffix == ".safetensors":
        tensors, _ = load_tensors(p)
        if len(tensors) == 1:
            return {p.stem: VoicePack(next(iter(tensors.values())).float(), p.stem)}
        return {k: VoicePack(v.float(), k) for k, v in tensors.items()}
    if p.suffix in (".pt", ".pth"):
        data = safe_torch_load(p)
        if isinstance(data, torch.Tensor):
            return {p.stem: VoicePack(data.float(), p.stem)}
        if isinstance(data, Mapping) and all(isinstance(v, torch.Tensor) for v in data.values()):
            return {k: VoicePack(v.float(), k) for k, v in data.items()}
        raise ValueError(f"{p}: expected a voice-pack tensor [rows, 1, width] or a dict of them")
    if p.suffix == ".bin":
        raw = np.fromfile(p, dtype="<f4")
        return {p.stem: _raw_pack(raw, p)}
    raise ValueError(f"{p}: unknown voice-pack format (expected one of {', '.join(PACK_SUFFIXES)})")


def _raw_pack(raw: np.ndarray, path: Path, width: int = 256) -> VoicePack:
    """kokoro-js layout: float32 ``[rows, 1, width]`` with nothing else in the file."""
    if raw.size == 0 or raw.size % width:
        raise ValueError(
            f"{path}: {raw.size * 4} bytes is not a whole number of float32 style rows of width {width}"
        )
    return VoicePack(torch.from_numpy(raw.reshape(-1, width).copy()), path.stem)


def parse_spec(spec: str) -> list[tuple[str, float]]:
    """``a:0.6,b:0.4`` -> ``[(a, 0.6), (b, 0.4)]``; ``a,b`` -> equal weights."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty voice spec")
    out: list[tuple[str, float | None]] = []
    for part in parts:
        name, sep, weight = part.rpartition(":") if ":" in part else (part, "", "")
        if sep:
            try:
                out.append((name.strip(), float(weight)))
            except ValueError as e:
                raise ValueError(f"voice spec {spec!r}: weight {weight!r} of {name!r} is not a number") from e
        else:
            out.append((part, None))
    if all(w is None for _, w in out):
        return [(n, 1.0 / len(out)) for n, _ in out]
    if any(w is None for _, w in out):
        raise ValueError(f"voice spec {spec!r}: give a weight to every voice or to none")
    return [(n, float(w)) for n, w in out]


def blend(packs: list[tuple[VoicePack, float]], name: str) -> VoicePack:
    """Weighted sum of packs (rows beyond the shortest pack's are dropped)."""
    rows = min(p.styles.shape[0] for p, _ in packs)
    widths = {p.width for p, _ in packs}
    if len(widths) != 1:
        raise ValueError(f"cannot blend voice packs of different widths {sorted(widths)}")
    styles = sum(w * p.styles[:rows] for p, w in packs)
    return VoicePack(styles, name)


def resolve_voice(
    spec: str | os.PathLike | VoicePack | torch.Tensor | np.ndarray,
    bundle: Mapping[str, VoicePack] | None,
) -> VoicePack:
    """A pack from a name or blend of ``bundle``'s packs, a pack file, or an array."""
    if isinstance(spec, VoicePack):
        return spec
    if isinstance(spec, (torch.Tensor, np.ndarray)):
        return VoicePack(torch.as_tensor(spec).float(), "voice")
    text = str(spec)
    p = Path(text)
    if p.suffix in PACK_SUFFIXES and (p.is_file() or os.sep in text or "/" in text):
        packs = read_bundle(p)
        if len(packs) != 1:
            raise ValueError(
                f"{p} holds {len(packs)} voice packs ({', '.join(list(packs)[:6])}, ...); pass one"
            )
        return next(iter(packs.values()))
    known = dict(bundle or {})
    chosen = []
    for name, weight in parse_spec(text):
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown voice {name!r}; this model's voices: {names}")
        chosen.append((known[name], weight))
    if len(chosen) == 1 and chosen[0][1] == 1.0:
        return chosen[0][0]
    return blend(chosen, text)


def write_pack(pack: VoicePack, path: str | os.PathLike) -> Path:
    """Save one pack in the format its suffix names (``.bin`` raw float32 as kokoro-js reads it, ``.pt``
    a ``[rows, 1, width]`` tensor as Kokoro's own voices, ``.safetensors`` ours); atomic."""
    from ...utils.io import atomic_path, save_tensors

    out = Path(path)
    styles = pack.styles.float().unsqueeze(1).contiguous()  # [rows, 1, width], Kokoro's own layout
    if out.suffix == ".safetensors":
        save_tensors(out, {"pack": styles}, metadata={"name": pack.name})
        return out
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix == ".bin":
            styles.numpy().astype("<f4").tofile(tmp)
        elif out.suffix in (".pt", ".pth"):
            torch.save(styles.clone(), tmp)
        else:
            raise ValueError(f"{out}: write a voice pack as .bin, .pt or .safetensors")
    return out
