"""Curvature scalings: ours (the Laplace approximation as written) and the reference implementation's.

Ours: ``λ/2 · vec(ΔW)ᵀ (A ⊗ G) vec(ΔW)`` with ``A`` the frame mean of ``a aᵀ`` and ``G`` normalised per
utterance, ``G = (1/N) Σ_{n,t} g gᵀ`` for per-utterance losses (see docs/method.md).

Reference (Chen & Garner's code, with which λ = 1e3–1e4 was reported for TTS): no ½, and ``G`` averaged
over frames as well, ``G_ref = (1/F) Σ_{n,t} g gᵀ``, at batch size 1 (batch-mean loss = utterance loss).
So ``G_ref = G · N / F`` per layer (F: the frames that layer saw) and the penalty doubles; the diagonal
Fisher (per-utterance squared gradients) and L2-SP differ by the ½ only. Under this scaling the
reference's λ values transfer.
"""

from __future__ import annotations

from dataclasses import replace

from ..curvature import Curvature

SCALINGS = ("ours", "reference")


def apply_scaling(curvature: Curvature | str, scaling: str) -> tuple[Curvature | str, float]:
    """``(curvature, strength factor)`` under ``scaling``; the curvature given is not modified."""
    if scaling not in SCALINGS:
        raise ValueError(f"curvature scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    if scaling == "ours":
        return curvature, 1.0
    method = curvature if isinstance(curvature, str) else curvature.method
    if method in ("l2sp", "diag"):
        return curvature, 2.0
    if method != "kfac":
        raise ValueError(
            f"--curvature-scaling reference is defined for kfac, diag and l2sp curvature (the reference "
            f"implementation has no {method}); use --curvature-scaling ours"
        )
    layers = {}
    for name, factors in curvature.layers.items():
        frames = float(curvature.info[name].get("frames") or 0)
        if frames <= 0 or curvature.num_utterances <= 0:
            raise ValueError(
                f"{name}: the curvature file records no frame count, so its G cannot be put on the "
                "reference's per-frame scale; re-estimate it with this version of 'tts-adapt curvature'"
            )
        layers[name] = {**factors, "G": factors["G"] * (curvature.num_utterances / frames)}
    return replace(curvature, layers=layers), 2.0
