"""The Laplace prior penalty ``λ/2 · Σ_layers vec(ΔW)ᵀ H vec(ΔW)`` centred on the pre-trained weights.

With LoRA, ``ΔW = B·A`` (scaling folded into ``B``, rank r) and the penalty never forms ``ΔW``:

* l2sp: ``‖B A‖² = tr((BᵀB)(AAᵀ))``, r×r work after two thin GEMMs;
* kfac: ``tr(G ΔW A_f ΔWᵀ) = tr((Bᵀ G B)(A A_f Aᵀ))``, O(r·(d_out² + d_in²)) instead of the dense
  O(d_out·d_in·(d_out + d_in));
* ekfac: ``Σ scale ⊙ ((QGᵀ B)(A QA))²`` and diag: ``Σ diag ⊙ (B A)²``, one rank-r product each.

Here ``A_f`` is the input factor without its bias row/column (LoRA leaves biases alone). For full
fine-tuning (no LoRA layers) the prior keeps a copy ``W₀`` of every target weight (bias included) and
penalises ``W − W₀`` with the dense forms. Only LoRA parameters (or, for full fine-tuning, the layer
weights) receive gradients; the curvature tensors are buffers that follow ``.to(device)``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ..adapters.lora import delta_factors, lora_layers
from ..adapters.targets import named_layers, unwrap
from ..curvature.layers import make_spec
from ..curvature.store import Curvature

log = logging.getLogger(__name__)


class LaplacePrior(nn.Module):
    """``LaplacePrior(model, curvature, strength)``; call :meth:`penalty` in every training step.

    ``curvature``: a :class:`~tts_adapt.curvature.Curvature` (checked against ``model``) or ``"l2sp"``
    (identity on the LoRA layers, or on the default targets for full fine-tuning). ``mode``: ``"lora"``,
    ``"full"`` or ``"auto"`` (LoRA if the model has LoRA layers). ``missing``: what to do with LoRA layers
    the curvature does not cover: ``"error"`` or ``"skip"`` (no penalty on them).
    """

    def __init__(
        self,
        model: nn.Module,
        curvature: Curvature | str,
        strength: float,
        mode: str = "auto",
        missing: str = "error",
        check_weights: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if strength < 0:
            raise ValueError(f"prior strength must be >= 0, got {strength}")
        if missing not in ("error", "skip"):
            raise ValueError("missing must be 'error' or 'skip'")
        adapters = lora_layers(model)
        if mode == "auto":
            mode = "lora" if adapters else "full"
        if mode not in ("lora", "full"):
            raise ValueError(f"mode must be 'lora', 'full' or 'auto', got {mode!r}")
        if mode == "lora" and not adapters:
            raise ValueError("mode 'lora' but the model has no LoRA layers (apply_lora first)")
        if isinstance(curvature, str):
            if curvature != "l2sp":
                raise ValueError(f"curvature must be a Curvature or 'l2sp', got {curvature!r}")
            from ..curvature import estimate

            targets = list(adapters) if mode == "lora" else None
            curvature = estimate(model, [], None, "l2sp", targets=targets, progress=False)
        else:
            curvature.check(model, check_weights=check_weights)
        self.strength = float(strength)
        self.mode = mode
        self.method = curvature.method
        self._terms: list[dict[str, Any]] = []  # plain list: not registered as submodules
        layers = named_layers(model)
        if mode == "lora":
            names = list(adapters)
            lack = [n for n in names if n not in curvature.info]
            if lack and missing == "error":
                raise ValueError(
                    f"{len(lack)} LoRA layers have no curvature ({lack[:3]}); estimate it for the LoRA targets or "
                    "pass missing='skip'"
                )
            if lack:
                log.warning("no prior on %d LoRA layers without curvature: %s", len(lack), lack[:5])
            names = [n for n in names if n in curvature.info]
        else:
            names = curvature.targets
        unused = sorted(set(curvature.info) - set(names))
        if unused:
            log.info("curvature of %d layers is not used by this prior (not adapted)", len(unused))
        for i, name in enumerate(names):
            self._add(i, name, layers[name], curvature, dtype)

    # ---- construction -------------------------------------------------------------------------
    def _add(self, i: int, name: str, layer: nn.Module, curv: Curvature, dtype: torch.dtype | None) -> None:
        info = curv.info[name]
        spec = make_spec(name, layer)
        if [info["d_out"], info["d_in"], info["bias"]] != [spec.d_out, spec.d_in, spec.bias]:
            raise ValueError(f"{name}: curvature shape {info['d_out']}x{info['d_in']} does not fit the layer")
        if spec.kind == "lstm" and self.method != "l2sp":
            raise ValueError(f"{name}: only the l2sp prior is available for nn.LSTM layers")
        ref = next(iter(layer.parameters()))
        dt = dtype or (ref.dtype if ref.dtype.is_floating_point else torch.float32)
        term: dict[str, Any] = {"name": name, "layer": layer, "spec": spec, "buffers": {}}
        d_in = spec.d_in
        for key, t in curv.layers.get(name, {}).items():
            if key == "A" and self.mode == "lora":
                t = t[:d_in, :d_in]
            if key == "QA" and self.mode == "lora":
                t = t[:d_in]
            if key in ("A", "G") and self.method == "ekfac":
                continue  # EKFAC uses its own scale, not the KFAC factors
            if key == "diag" and self.mode == "lora":
                t = t[:, :d_in]
            buf = f"t{i}_{key}"
            self.register_buffer(buf, t.detach().to(device=ref.device, dtype=dt).contiguous(), persistent=False)
            term["buffers"][key] = buf
        if self.mode == "full":
            base = unwrap(layer)
            if spec.kind == "lstm":
                w0 = {n: p.detach().clone() for n, p in base.named_parameters()}
                for n, t in w0.items():
                    self.register_buffer(f"t{i}_w0_{n}", t, persistent=False)
                term["w0"] = {n: f"t{i}_w0_{n}" for n in w0}
            else:
                self.register_buffer(f"t{i}_w0", spec.weight_matrix().detach().clone(), persistent=False)
                term["w0"] = f"t{i}_w0"
        self._terms.append(term)

    @property
    def layer_names(self) -> list[str]:
        return [t["name"] for t in self._terms]

    # ---- evaluation ---------------------------------------------------------------------------
    def penalty(self) -> torch.Tensor:
        """``strength/2 · Σ_layers vec(ΔW)ᵀ H vec(ΔW)`` (a differentiable scalar)."""
        total = None
        for term in self._terms:
            q = self._quadratic(term)
            total = q if total is None else total + q
        if total is None:
            ref = next(iter(self.buffers()), None)
            return torch.zeros((), device=ref.device if ref is not None else None)
        return 0.5 * self.strength * total

    def layer_penalties(self) -> dict[str, float]:
        """Unscaled ``vec(ΔW)ᵀ H vec(ΔW)`` per layer (for logging)."""
        with torch.no_grad():
            return {t["name"]: float(self._quadratic(t)) for t in self._terms}

    def _buf(self, term: dict[str, Any], key: str) -> torch.Tensor:
        return getattr(self, term["buffers"][key])

    def _quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        if self.mode == "lora":
            return self._lora_quadratic(term)
        return self._full_quadratic(term)

    def _lora_quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        factors = delta_factors(term["layer"])
        if not factors:  # adapters disabled or merged: nothing to penalise
            ref = next(iter(term["layer"].parameters()))
            return torch.zeros((), device=ref.device, dtype=ref.dtype)
        method = self.method
        out = None
        for b, a in factors.values():
            if method == "l2sp":
                q = ((b.T @ b) * (a @ a.T)).sum()
            elif method == "kfac":
                g, af = self._buf(term, "G"), self._buf(term, "A")
                q = ((b.T @ (g.to(b) @ b)) * ((a @ af.to(a)) @ a.T)).sum()
            elif method == "diag":
                q = (self._buf(term, "diag").to(b) * (b @ a).square()).sum()
            else:  # ekfac
                qg, qa, s = self._buf(term, "QG"), self._buf(term, "QA"), self._buf(term, "scale")
                q = (s.to(b) * ((qg.to(b).T @ b) @ (a @ qa.to(a))).square()).sum()
            out = q if out is None else out + q
        return out

    def _full_quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        spec = term["spec"]
        if spec.kind == "lstm":
            base = spec.module
            return sum(((p - getattr(self, term["w0"][n])).square().sum() for n, p in base.named_parameters()))
        delta = spec.weight_matrix() - getattr(self, term["w0"])
        method = self.method
        if method == "l2sp":
            return delta.square().sum()
        if method == "diag":
            return (self._buf(term, "diag").to(delta) * delta.square()).sum()
        if method == "kfac":
            g, a = self._buf(term, "G").to(delta), self._buf(term, "A").to(delta)
            return (delta * (g @ delta @ a)).sum()
        qg, qa, s = self._buf(term, "QG").to(delta), self._buf(term, "QA").to(delta), self._buf(term, "scale")
        return (s.to(delta) * (qg.T @ delta @ qa).square()).sum()

    def dense_penalty(self) -> torch.Tensor:
        """The same penalty through the dense ``ΔW`` (``tr(G ΔW A ΔWᵀ)`` etc.), for checks and benchmarks."""
        total = None
        for term in self._terms:
            if self.mode == "full":
                q = self._full_quadratic(term)
            else:
                q = None
                for b, a in delta_factors(term["layer"]).values():
                    dw = b @ a
                    if self.method == "l2sp":
                        qi = dw.square().sum()
                    elif self.method == "kfac":
                        qi = (dw * (self._buf(term, "G").to(dw) @ dw @ self._buf(term, "A").to(dw))).sum()
                    elif self.method == "diag":
                        qi = (self._buf(term, "diag").to(dw) * dw.square()).sum()
                    else:
                        rot = self._buf(term, "QG").to(dw).T @ dw @ self._buf(term, "QA").to(dw)
                        qi = (self._buf(term, "scale").to(dw) * rot.square()).sum()
                    q = qi if q is None else q + qi
                if q is None:
                    continue
            total = q if total is None else total + q
        return 0.5 * self.strength * (total if total is not None else torch.zeros(()))

    def extra_repr(self) -> str:
        return f"method={self.method}, mode={self.mode}, strength={self.strength:g}, layers={len(self._terms)}"
