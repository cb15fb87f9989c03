"""The Laplace prior penalty ``λ/2 · Σ_layers vec(ΔW)ᵀ H vec(ΔW)`` centred on the pre-trained weights.

With LoRA, ``ΔW = s·B·A`` (rank r) and the penalty never forms ``ΔW`` for L2-SP and KFAC:

* l2sp: ``s²·tr((BᵀB)(AAᵀ))``, r×r work after two thin GEMMs;
* kfac: ``tr(G ΔW A_f ΔWᵀ) = s²·tr((Bᵀ G B)(A A_f Aᵀ))``, O(r·(d_out² + d_in²)) instead of the dense
  O(d_out·d_in·(d_out + d_in));
* ekfac: ``s²·Σ scale ⊙ ((QGᵀ B)(A QA))²`` and diag: ``s²·Σ diag ⊙ (B A)²``, one rank-r product each.

Here ``A_f`` is the input factor without its bias row/column (LoRA leaves biases alone). Layers with
equal shapes and rank (StyleTTS 2's many AdaIN ``fc`` layers) are evaluated together with batched
matrix products, so the penalty costs a few kernels per shape rather than per layer. For full
fine-tuning (no LoRA layers) the prior keeps a copy ``W₀`` of every target weight (bias included) and
penalises ``W − W₀`` with the dense forms. Only LoRA parameters (or, for full fine-tuning, the layer
weights) receive gradients; the curvature tensors are buffers that follow ``.to(device)``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ..adapters.lora import active_adapters, delta_factors, lora_layers
from ..adapters.lstm import LoraLSTM
from ..adapters.targets import named_layers, unwrap
from ..curvature.layers import make_spec
from ..curvature.store import Curvature

log = logging.getLogger(__name__)


class _KFACLowRank(torch.autograd.Function):
    """``s_i² tr((B_iᵀ G_i B_i)(A_i A_f,i A_iᵀ))`` for a stack of layers ``i``, with a hand-written backward.

    With symmetric ``G`` and ``A_f`` the gradients are ``2 s² (G B) M_A`` and ``2 s² M_B (A A_f)``: they
    reuse the forward's ``G B`` and ``A A_f``, so the backward costs r×r products instead of repeating
    the O(r·d²) ones autograd would.
    """

    @staticmethod
    def forward(ctx, b, a, g, a_f, scale2):  # type: ignore[override]
        gb = g @ b  # [n, d_out, r]
        aa = a @ a_f  # [n, r, d_in]
        m_b = b.transpose(1, 2) @ gb  # [n, r, r]
        m_a = aa @ a.transpose(1, 2)  # [n, r, r]
        ctx.save_for_backward(gb, aa, m_b, m_a, scale2)
        return (m_b * m_a).sum(dim=(1, 2)) * scale2  # [n]

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        gb, aa, m_b, m_a, scale2 = ctx.saved_tensors
        w = (2 * grad * scale2).view(-1, 1, 1)
        return w * (gb @ m_a), w * (m_b @ aa), None, None, None


class LaplacePrior(nn.Module):
    """``LaplacePrior(model, curvature, strength)``; add :meth:`penalty` to the loss of every step.

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
            raise ValueError(f"missing must be 'error' or 'skip' (--prior-missing-layers), got {missing!r}")
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
        self.always_batch = False  # diag/EKFAC groups run batched on GPUs only, unless this is set
        self.method = curvature.method
        # plain lists/dicts: the model's layers must not become submodules of the prior
        self._terms: list[dict[str, Any]] = []
        self._groups: list[dict[str, Any]] = []
        layers = named_layers(model)
        if mode == "lora":
            names = list(adapters)
            lack = [n for n in names if n not in curvature.info]
            if lack and missing == "error":
                raise ValueError(
                    f"{len(lack)} LoRA layers have no curvature ({lack[:3]}); estimate it for the LoRA "
                    "targets (tts-adapt curvature --targets) or pass --prior-missing-layers skip to "
                    "'tts-adapt adapt' to leave them without a prior"
                )
            if lack:
                log.warning("no prior on %d LoRA layers without curvature: %s", len(lack), lack[:5])
            names = [n for n in names if n in curvature.info]
        else:
            names = curvature.targets
        unused = sorted(set(curvature.info) - set(names))
        if unused:
            log.info("curvature of %d layers is not used by this prior (not adapted)", len(unused))
        for name in names:
            self._add(name, layers[name], curvature)
        self._register_tensors(curvature, dtype)

    # ---- construction -------------------------------------------------------------------------
    def _add(self, name: str, layer: nn.Module, curv: Curvature) -> None:
        info = curv.info[name]
        spec = make_spec(name, layer)
        if [info["d_out"], info["d_in"], info["bias"]] != [spec.d_out, spec.d_in, spec.bias]:
            raise ValueError(f"{name}: curvature shape {info['d_out']}x{info['d_in']} does not fit the layer")
        if spec.kind == "lstm" and self.method != "l2sp":
            raise ValueError(f"{name}: only the l2sp prior is available for nn.LSTM layers")
        term: dict[str, Any] = {"name": name, "layer": layer, "spec": spec}
        if self.mode == "lora" and spec.kind != "lstm":
            adapters = active_adapters(layer)
            if len(adapters) == 1:
                adapter = adapters[0]
                rank = layer.lora_A[adapter].weight.shape[0]
                key = (spec.d_out, spec.d_in, spec.bias, rank)  # EKFAC's QA/scale include the bias column
                group = next((g for g in self._groups if g["key"] == key), None)
                if group is None:
                    group = {"key": key, "terms": []}
                    self._groups.append(group)
                term.update(adapter=adapter, group=group, index=len(group["terms"]))
                group["terms"].append(term)
        self._terms.append(term)

    def _slice(self, key: str, t: torch.Tensor, d_in: int) -> torch.Tensor | None:
        """The part of a curvature tensor the penalty needs (LoRA has no bias column)."""
        if self.method == "ekfac" and key in ("A", "G"):
            return None  # EKFAC uses its own scale, not the KFAC factors
        if self.mode == "lora":
            if key == "A":
                return t[:d_in, :d_in]
            if key == "QA":
                return t[:d_in]
            if key == "diag":
                return t[:, :d_in]
        return t

    def _register_tensors(self, curv: Curvature, dtype: torch.dtype | None) -> None:
        for i, term in enumerate(self._terms):
            spec, ref = term["spec"], next(iter(term["layer"].parameters()))
            dt = dtype or (ref.dtype if ref.dtype.is_floating_point else torch.float32)
            term["dtype"] = dt
            if "group" in term:
                continue
            term["buffers"] = {}
            for key, t in curv.layers.get(term["name"], {}).items():
                t = self._slice(key, t, spec.d_in)
                if t is not None:
                    name = f"t{i}_{key}"
                    self.register_buffer(name, t.detach().to(ref.device, dt).contiguous(), persistent=False)
                    term["buffers"][key] = name
            if self.mode == "full":
                base = unwrap(term["layer"])
                if spec.kind == "lstm":
                    term["w0"] = {}
                    for n, p in base.named_parameters():
                        self.register_buffer(f"t{i}_w0_{n}", p.detach().clone(), persistent=False)
                        term["w0"][n] = f"t{i}_w0_{n}"
                else:
                    self.register_buffer(f"t{i}_w0", spec.weight_matrix().detach().clone(), persistent=False)
                    term["w0"] = f"t{i}_w0"
        for gi, group in enumerate(self._groups):
            terms = group["terms"]
            ref = next(iter(terms[0]["layer"].parameters()))
            group["buffers"] = {}
            for key in curv.layers.get(terms[0]["name"], {}):
                parts = [self._slice(key, curv.layers[t["name"]][key], t["spec"].d_in) for t in terms]
                if parts[0] is None:
                    continue
                name = f"g{gi}_{key}"
                stacked = torch.stack(parts).to(ref.device, terms[0]["dtype"]).contiguous()
                self.register_buffer(name, stacked, persistent=False)
                group["buffers"][key] = name

    @property
    def layer_names(self) -> list[str]:
        return [t["name"] for t in self._terms]

    # ---- evaluation ---------------------------------------------------------------------------
    def penalty(self) -> torch.Tensor:
        """``strength/2 · Σ_layers vec(ΔW)ᵀ H vec(ΔW)`` (a differentiable scalar)."""
        parts = [self._group_quadratics(g).sum() for g in self._groups]
        parts += [self._term_quadratic(t).reshape(()) for t in self._terms if "group" not in t]
        if not parts:
            ref = next(iter(self.buffers()), None)
            return torch.zeros((), device=ref.device if ref is not None else None)
        total = parts[0] if len(parts) == 1 else torch.stack(parts).sum()
        return 0.5 * self.strength * total

    def quadratic_terms(self) -> list[torch.Tensor]:
        """Unscaled, differentiable ``vec(ΔW)ᵀ H vec(ΔW)`` per layer, in :attr:`layer_names` order
        (e.g. to weight components differently: ``Σ λ_l/2 · q_l``)."""
        per_group = [self._group_quadratics(g) for g in self._groups]
        out = []
        for term in self._terms:
            if "group" in term:
                out.append(per_group[self._groups.index(term["group"])][term["index"]])
            else:
                out.append(self._term_quadratic(term).reshape(()))
        return out

    def layer_penalties(self) -> dict[str, float]:
        """Unscaled ``vec(ΔW)ᵀ H vec(ΔW)`` per layer as floats (for logging)."""
        with torch.no_grad():
            return {t["name"]: float(self._term_quadratic(t)) for t in self._terms}

    def _tensor(self, term: dict[str, Any], key: str) -> torch.Tensor:
        if "group" in term:
            return getattr(self, term["group"]["buffers"][key])[term["index"]]
        return getattr(self, term["buffers"][key])

    def _group_quadratics(self, group: dict[str, Any]) -> torch.Tensor:
        """``[n]`` quadratic forms of a group of equal-shape LoRA layers, evaluated batched."""
        terms = group["terms"]
        switched = any(active_adapters(t["layer"]) != [t["adapter"]] for t in terms)
        # diag/EKFAC form a d_out×d_in product per layer: batching pays where kernel launches cost (GPU);
        # on a CPU that product is bandwidth-bound and the stacked copies only slow it down
        key = {"diag": "diag", "ekfac": "scale"}.get(self.method)
        unbatched = (
            key is not None
            and not self.always_batch
            and getattr(self, group["buffers"][key]).device.type == "cpu"
        )
        if switched or unbatched:
            # (switched: adapters disabled, merged or changed since construction) evaluate layer by layer
            return torch.stack([self._term_quadratic(t).reshape(()) for t in terms])
        b = torch.stack([t["layer"].lora_B[t["adapter"]].weight.reshape(group["key"][0], -1) for t in terms])
        a = torch.stack([t["layer"].lora_A[t["adapter"]].weight.reshape(-1, group["key"][1]) for t in terms])
        scale2 = torch.tensor(
            [float(t["layer"].scaling[t["adapter"]]) ** 2 for t in terms], dtype=b.dtype, device=b.device
        )
        buf = {k: getattr(self, v) for k, v in group["buffers"].items()}
        bt = b.transpose(1, 2)
        if self.method == "kfac":
            return _KFACLowRank.apply(b, a, buf["G"].to(b), buf["A"].to(a), scale2)
        if self.method == "l2sp":
            q = ((bt @ b) * (a @ a.transpose(1, 2))).sum(dim=(1, 2))
        elif self.method == "diag":
            q = (buf["diag"].to(b) * (b @ a).square()).sum(dim=(1, 2))
        else:
            rot = (buf["QG"].to(b).transpose(1, 2) @ b) @ (a @ buf["QA"].to(a))
            q = (buf["scale"].to(b) * rot.square()).sum(dim=(1, 2))
        return q * scale2

    def _term_quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        if self.mode == "lora":
            return self._lora_quadratic(term)
        return self._full_quadratic(term)

    def _lora_quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        factors = delta_factors(term["layer"])
        if not factors:  # adapters disabled or merged: nothing to penalise
            ref = next(iter(term["layer"].parameters()))
            return torch.zeros((), device=ref.device, dtype=ref.dtype)
        method = self.method
        if isinstance(term["layer"], LoraLSTM) and method != "l2sp":
            raise ValueError(f"{term['name']}: only the l2sp prior is available for nn.LSTM layers")
        out = None
        for b, a in factors.values():
            if method == "l2sp":
                q = ((b.T @ b) * (a @ a.T)).sum()
            elif method == "kfac":
                g, af = self._tensor(term, "G"), self._tensor(term, "A")
                q = ((b.T @ (g.to(b) @ b)) * ((a @ af.to(a)) @ a.T)).sum()
            elif method == "diag":
                q = (self._tensor(term, "diag").to(b) * (b @ a).square()).sum()
            else:  # ekfac
                qg, qa, s = self._tensor(term, "QG"), self._tensor(term, "QA"), self._tensor(term, "scale")
                q = (s.to(b) * ((qg.to(b).T @ b) @ (a @ qa.to(a))).square()).sum()
            out = q if out is None else out + q
        return out

    def _full_quadratic(self, term: dict[str, Any]) -> torch.Tensor:
        spec = term["spec"]
        if spec.kind == "lstm":
            base = spec.module
            return sum((p - getattr(self, term["w0"][n])).square().sum() for n, p in base.named_parameters())
        delta = spec.weight_matrix() - getattr(self, term["w0"])
        return self._dense(term, delta)

    def _dense(self, term: dict[str, Any], delta: torch.Tensor) -> torch.Tensor:
        """``vec(ΔW)ᵀ H vec(ΔW)`` through the dense ``ΔW``."""
        method = self.method
        if method == "l2sp":
            return delta.square().sum()
        if method == "diag":
            return (self._tensor(term, "diag").to(delta) * delta.square()).sum()
        if method == "kfac":
            g, a = self._tensor(term, "G").to(delta), self._tensor(term, "A").to(delta)
            return (delta * (g @ delta @ a)).sum()
        qg, qa = self._tensor(term, "QG").to(delta), self._tensor(term, "QA").to(delta)
        return (self._tensor(term, "scale").to(delta) * (qg.T @ delta @ qa).square()).sum()

    def dense_penalty(self) -> torch.Tensor:
        """The same penalty through the dense ``ΔW`` (``tr(G ΔW A ΔWᵀ)`` etc.), for checks and benchmarks."""
        parts = []
        for term in self._terms:
            if self.mode == "full":
                parts.append(self._full_quadratic(term))
                continue
            for b, a in delta_factors(term["layer"]).values():
                parts.append(self._dense(term, b @ a))
        if not parts:
            return torch.zeros(())
        return 0.5 * self.strength * torch.stack([p.reshape(()) for p in parts]).sum()

    def extra_repr(self) -> str:
        return (
            f"method={self.method}, mode={self.mode}, strength={self.strength:g}, layers={len(self._terms)}, "
            f"shape_groups={len(self._groups)}"
        )
