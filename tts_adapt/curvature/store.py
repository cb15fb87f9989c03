"""The result of a curvature pass, and its safetensors + JSON file.

Per layer (key = canonical module name), with the bias folded in as an extra input column when the
layer has one (``d_in' = d_in + 1``):

========  ================================================================================
method    tensors
========  ================================================================================
l2sp      none (identity)
diag      ``diag`` [d_out, d_in']: mean over utterances of the squared per-utterance gradient
kfac      ``A`` [d_in', d_in'] (mean over frames of a aᵀ), ``G`` [d_out, d_out] (Σ g gᵀ / N)
ekfac     ``QA``, ``QG`` (eigenvectors of A and G), ``scale`` [d_out, d_in'] (per-utterance
          gradients rotated into that basis, squared, averaged), plus the KFAC ``A`` and ``G``
========  ================================================================================

so that ``vec(ΔW)ᵀ H vec(ΔW)`` is ``Σ diag·ΔW²``, ``tr(G ΔW A ΔWᵀ)`` or ``Σ scale·(QGᵀ ΔW QA)²``.
The file remembers which model it belongs to (a fingerprint of the target layers' names, shapes and
weights); loading it for another model or target set is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..adapters.targets import named_layers, unwrap
from ..utils.io import load_tensors, save_tensors

FORMAT = "tts-adapt-curvature/1"
METHODS = ("l2sp", "diag", "kfac", "ekfac")
TENSOR_KEYS = {"l2sp": (), "diag": ("diag",), "kfac": ("A", "G"), "ekfac": ("QA", "QG", "scale", "A", "G")}


def fingerprint(model: nn.Module, names: Sequence[str]) -> dict[str, str]:
    """``structure``: hash of target names, types and parameter shapes; ``weights``: hash of their values
    (as float32, so a float64 copy of the same weights matches; another checkpoint does not)."""
    layers = named_layers(model)
    missing = [n for n in names if n not in layers]
    if missing:
        raise ValueError(f"layers {missing[:3]} are not in the model")
    s, w = hashlib.sha256(), hashlib.sha256()
    for name in sorted(names):
        base = unwrap(layers[name])
        s.update(f"{name}:{type(base).__name__};".encode())
        for key, t in sorted(base.state_dict().items()):
            s.update(f"{key}{tuple(t.shape)};".encode())
            w.update(key.encode())
            t = t.detach().to("cpu")
            if t.is_floating_point():  # float32 bytes: the same weights hash alike in float32 or float64
                t = t.float()
            w.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    return {"structure": s.hexdigest(), "weights": w.hexdigest()}


@dataclass
class Curvature:
    """Curvature of the pre-training loss for a set of layers; see the module docstring."""

    method: str
    layers: dict[str, dict[str, torch.Tensor]]
    info: dict[str, dict[str, Any]]
    num_utterances: int = 0
    fingerprint: dict[str, str] = field(default_factory=dict)
    data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown curvature method {self.method!r}; expected one of {METHODS}")

    @property
    def targets(self) -> list[str]:
        return sorted(self.info)

    # ---- evaluation ---------------------------------------------------------------------------
    def quadratic(self, name: str, delta: torch.Tensor) -> torch.Tensor:
        """``vec(ΔW)ᵀ H vec(ΔW)`` for a dense ``ΔW`` [d_out, d_in or d_in'] (missing bias column = 0)."""
        t = self.layers.get(name, {})
        info = self.info[name]
        d_aug = info["d_in"] + int(info["bias"])
        delta = delta.reshape(info["d_out"], -1)
        if self.method == "l2sp":
            return delta.pow(2).sum()
        k = delta.shape[1]
        if k not in (info["d_in"], d_aug):
            raise ValueError(f"{name}: ΔW has {k} input columns, expected {info['d_in']} or {d_aug}")
        if self.method == "diag":
            return (t["diag"][:, :k].to(delta) * delta.pow(2)).sum()
        if self.method == "kfac":
            a, g = t["A"][:k, :k].to(delta), t["G"].to(delta)
            return (delta * (g @ delta @ a)).sum()
        rot = t["QG"].to(delta).T @ delta @ t["QA"][:k].to(delta)
        return (t["scale"].to(delta) * rot.pow(2)).sum()

    # ---- checks -------------------------------------------------------------------------------
    def check(
        self, model: nn.Module, targets: Sequence[str] | None = None, check_weights: bool = True
    ) -> None:
        """Raise ``ValueError`` unless this curvature was estimated for ``model`` (and ``targets``)."""
        if targets is not None and sorted(targets) != self.targets:
            extra = sorted(set(targets) - set(self.targets))
            lack = sorted(set(self.targets) - set(targets))
            raise ValueError(
                f"curvature targets differ from the requested ones: not estimated {extra[:3]}, "
                f"not requested {lack[:3]} ({len(self.targets)} layers in the file)"
            )
        layers = named_layers(model)
        absent = [n for n in self.targets if n not in layers]
        if absent:
            raise ValueError(
                f"the curvature is for another model: layers {absent[:3]} do not exist in this one"
            )
        fp = fingerprint(model, self.targets)
        if self.fingerprint.get("structure") and fp["structure"] != self.fingerprint["structure"]:
            raise ValueError("the curvature is for another model: target layer types or shapes differ")
        if check_weights and self.fingerprint.get("weights") and fp["weights"] != self.fingerprint["weights"]:
            raise ValueError(
                "the curvature was estimated on different weights of this architecture (another "
                "checkpoint?); pass --curvature-any-weights to 'tts-adapt adapt' if that is intended"
            )

    # ---- files --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "targets": self.targets,
            "layers": self.info,
            "num_utterances": int(self.num_utterances),
            "fingerprint": self.fingerprint,
            "data": self.data,
            "extra": self.extra,
        }

    def save(self, path: str | os.PathLike) -> Path:
        tensors = {f"{name}/{key}": t for name, d in self.layers.items() for key, t in d.items()}
        if not tensors:  # safetensors needs at least a header; keep l2sp files loadable by any reader
            tensors = {"__empty__": torch.zeros(0)}
        save_tensors(path, tensors, self.metadata())
        return Path(path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model: nn.Module | None = None,
        targets: Sequence[str] | None = None,
        check_weights: bool = True,
        device: str = "cpu",
    ) -> Curvature:
        tensors, meta = load_tensors(path, device=device)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a tts-adapt curvature file (format {meta.get('format')!r})")
        layers: dict[str, dict[str, torch.Tensor]] = {n: {} for n in meta["targets"]}
        for key, t in tensors.items():
            if key == "__empty__":
                continue
            name, _, sub = key.rpartition("/")
            if name not in layers:
                raise ValueError(f"{path}: tensor {key!r} belongs to no listed target")
            layers[name][sub] = t
        need = TENSOR_KEYS[meta["method"]]
        for name, d in layers.items():
            lack = [k for k in need if k not in d]
            if lack:
                raise ValueError(f"{path}: layer {name} lacks {lack} for method {meta['method']}")
        curv = cls(
            method=meta["method"],
            layers=layers,
            info=meta["layers"],
            num_utterances=meta.get("num_utterances", 0),
            fingerprint=meta.get("fingerprint", {}),
            data=meta.get("data"),
            extra=meta.get("extra", {}),
        )
        if model is not None or targets is not None:
            if model is None:
                if sorted(targets) != curv.targets:
                    raise ValueError(f"{path}: curvature targets differ from the requested ones")
            else:
                try:
                    curv.check(model, targets, check_weights)
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from e
        return curv

    def summary(self) -> str:
        return json.dumps(
            {"method": self.method, "layers": len(self.info), "utterances": self.num_utterances},
            sort_keys=True,
        )
