"""What ``tts-adapt curvature --dry-run`` prints: the layers, the data and the size of the result.

The size is computed from the layers' shapes (float32, a bias folded in as one more input column):
KFAC stores ``A`` ((d_in+1)²) and ``G`` (d_out²) per layer, EKFAC the same eigenbases plus a
``d_out × (d_in+1)`` scale, the diagonal Fisher one value per weight, L2-SP nothing.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..adapters.targets import named_layers


def stored_floats(method: str, d_out: int, d_in: int) -> int:
    """float32 values stored per layer for ``method`` (``d_in`` includes the bias column)."""
    if method == "kfac":
        return d_in * d_in + d_out * d_out
    if method == "ekfac":
        return d_in * d_in + d_out * d_out + d_out * d_in
    if method == "diag":
        return d_out * d_in
    return 0


def curvature_plan(
    model: nn.Module, names: list[str], method: str, data: dict[str, Any] | None, settings: dict[str, Any]
) -> str:
    layers = named_layers(model)
    by_component: dict[str, list[int]] = {}
    total = 0
    for name in names:
        weight = layers[name].weight
        d_out = int(weight.shape[0])
        d_in = weight.numel() // d_out + int(getattr(layers[name], "bias", None) is not None)
        floats = stored_floats(method, d_out, d_in)
        row = by_component.setdefault(name.split(".")[0], [0, 0, 0])
        row[0] += 1
        row[1] += d_out * d_in
        row[2] += floats
        total += floats
    lines = [f"curvature plan: method {method}, {len(names)} layers"]
    lines.append(f"  {'component':<20}{'layers':>8}{'weights':>14}{'stored MB':>12}")
    for comp, (n, w, f) in sorted(by_component.items()):
        lines.append(f"  {comp:<20}{n:>8}{w:>14,}{f * 4 / 1e6:>12.1f}")
    lines.append(f"  result: about {total * 4 / 1e6:.1f} MB on disk")
    for key, value in settings.items():
        lines.append(f"  {key}: {value}")
    if data is None:
        lines.append("  data: none (l2sp needs no data)")
    else:
        lines.append(
            f"  data: {data.get('utterances')} utterances in {data.get('batches', '?')} batches"
            + (f", {data['hours']:.2f} h" if isinstance(data.get("hours"), float) else "")
        )
    return "\n".join(lines)
