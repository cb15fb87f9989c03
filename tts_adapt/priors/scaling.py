"""Curvature scalings: ours (the Laplace approximation as written) and the reference implementation's.

Ours: ``λ/2 · vec(ΔW)ᵀ (A ⊗ G) vec(ΔW)`` with ``A`` the frame mean of ``a aᵀ`` and ``G`` normalised per
utterance, ``G = (1/N) Σ_{n,t} g gᵀ`` for per-utterance losses (see docs/method.md).

Reference (Chen & Garner's code, with which λ = 1e3–1e4 was reported for TTS): ``λ · Σ ΔW·(G ΔW A)``,
no ½, with ``A`` and ``G`` kept by hooks per *call* of a layer: each call adds the mean over its
positions of ``a aᵀ`` (every forward call) and of ``g gᵀ`` (every call reached by the backward, ``g``
of the batch-mean loss), and the sums are divided by the number of batches. A layer called k times per
step (PL-BERT's shared ALBERT layer: 12) so gets about k² times the weight it gets from one mean over
all its frames, which no rescaling of our ``G`` can reproduce: a reference-scale file is estimated as
such (``tts-adapt curvature --scaling reference``), and this module only checks that the file and the
scaling asked for agree and returns the strength factor (2: the penalty loses its ½). The diagonal
(EWC) and L2-SP differ from ours in the same way (per-call squared batch gradients; the ½).
"""

from __future__ import annotations

from ..curvature import Curvature

SCALINGS = ("ours", "reference")


def estimated_scaling(curvature: Curvature | str) -> str | None:
    """The scaling a curvature file was estimated with (``None``: L2-SP, which has no statistics)."""
    if isinstance(curvature, str) or curvature.method == "l2sp":
        return None
    return str(curvature.extra.get("scaling", "ours"))


def apply_scaling(curvature: Curvature | str, scaling: str) -> tuple[Curvature | str, float]:
    """``(curvature, strength factor)`` under ``scaling``; refuses a file estimated on the other scale."""
    if scaling not in SCALINGS:
        raise ValueError(f"curvature scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    factor = 2.0 if scaling == "reference" else 1.0
    estimated = estimated_scaling(curvature)
    if estimated is None or estimated == scaling:
        return curvature, factor
    if scaling == "reference":
        raise ValueError(
            f"--curvature-scaling reference needs the reference implementation's statistics (per-call "
            f"means, normalised by batches), and this {curvature.method} file holds ours: estimate it with "
            "'tts-adapt curvature --scaling reference'"
        )
    raise ValueError(
        f"this {curvature.method} curvature was estimated with 'tts-adapt curvature --scaling {estimated}': "
        f"pass --curvature-scaling {estimated} to adapt (its λ values are on that scale)"
    )
