"""Forward/gradient hooks that turn one backward pass into curvature statistics.

For each target layer a forward hook keeps the layer input; a tensor hook on the layer output receives
``g = ∂(Σ_n ℓ_n)/∂s``, which equals ``∂ℓ_n/∂s`` on utterance n's rows because utterances do not
interact. Per batch and layer the statistics are GEMMs over the flattened frames (no per-frame outer
products), computed in the activation dtype and added to float64 accumulators:

* kfac: ``A += aᵀa`` over valid frames (count kept), ``G += gᵀg``;
* diag: per-utterance gradients ``Σ_t g aᵀ`` via one batched GEMM, squared and summed;
* ekfac (second pass): the same with ``a`` and ``g`` first rotated into the KFAC eigenbases.

A layer called several times in one forward (shared weights, as in ALBERT) adds every call's frames to
A and G; its per-utterance gradients are summed over the calls before squaring. Model parameters are
not differentiated at all: outputs are made differentiable with a zero leaf instead.

``scaling="reference"`` keeps the statistics of the paper's reference implementation instead, per call
of a layer as its forward and backward hooks do: every forward call (with or without a gradient) adds
the mean over all of that call's positions (padding included) of ``a aᵀ`` to A; every call that
receives a gradient adds the mean of ``g gᵀ`` to G, with ``g`` the gradient of the *batch-mean* loss
(ours / B); diag adds the square of each call's batch gradient ``Σ g aᵀ``. Sums are kept per batch and
divided by the number of batches at the end (:func:`~tts_adapt.curvature.estimate.estimate`). A layer
called k times per batch so gets k per-call means, not one mean over k times the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..objective import frames as masking
from .layers import LayerSpec

F64 = torch.float64


class Accumulator:
    """Hooks + float64 sums for one statistic (``"kfac"``, ``"diag"`` or ``"ekfac"``) over many batches."""

    def __init__(
        self,
        specs: Sequence[LayerSpec],
        stat: str,
        bases: dict[str, dict[str, torch.Tensor]] | None = None,
        scaling: str = "ours",
    ):
        if stat not in ("kfac", "diag", "ekfac"):
            raise ValueError(f"unknown statistic {stat!r}")
        if scaling not in ("ours", "reference"):
            raise ValueError(f"unknown curvature scaling {scaling!r}")
        if scaling == "reference" and stat == "ekfac":
            raise ValueError(
                "the reference scaling has no EKFAC statistic (its 'ekfac' is KFAC's eigenbasis)"
            )
        self.specs = list(specs)
        self.stat = stat
        self.scaling = scaling
        self.bases = bases or {}
        self.sums: dict[str, dict[str, torch.Tensor]] = {}
        self.count_utterances = 0
        self.count_batches = 0
        self._batch: dict[str, dict[str, torch.Tensor]] = {}  # reference: this batch's per-call sums
        self._handles: list[Any] = []
        self._batch_size: int | None = None
        self._pending: dict[str, int] = {}
        self._buffers: dict[str, torch.Tensor] = {}
        self._rotations: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.fired: set[str] = set()
        for spec in self.specs:
            self.sums[spec.name] = self._zeros(spec)

    def _zeros(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        dev = next(spec.module.parameters()).device  # ``weight`` may be a stale weight-norm tensor
        out = {"frames": torch.zeros((), dtype=F64, device=dev)}
        if self.stat == "kfac":
            out["A"] = torch.zeros(spec.d_aug, spec.d_aug, dtype=F64, device=dev)
            out["G"] = torch.zeros(spec.d_out, spec.d_out, dtype=F64, device=dev)
        else:
            out["sq"] = torch.zeros(spec.d_out, spec.d_aug, dtype=F64, device=dev)
        if self.scaling == "reference":  # calls seen by the forward and by the backward hooks
            out["calls"] = torch.zeros((), dtype=F64, device=dev)
            out["grad_calls"] = torch.zeros((), dtype=F64, device=dev)
        return out

    # ---- state (resume, all-reduce) -----------------------------------------------------------
    def state(self) -> dict[str, torch.Tensor]:
        out = {f"{n}/{k}": t for n, d in self.sums.items() for k, t in d.items()}
        out["__utterances__"] = torch.tensor(float(self.count_utterances), dtype=F64)
        out["__batches__"] = torch.tensor(float(self.count_batches), dtype=F64)
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for n, d in self.sums.items():
            for k, t in d.items():
                key = f"{n}/{k}"
                if key not in state or state[key].shape != t.shape:
                    raise ValueError(f"partial curvature state lacks or mis-shapes {key}")
                t.copy_(state[key].to(t))
        self.count_utterances = int(state["__utterances__"].item())
        self.count_batches = int(state["__batches__"].item()) if "__batches__" in state else 0

    def all_reduce(self) -> None:
        import torch.distributed as dist

        for d in self.sums.values():
            for t in d.values():
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
        device = next(t for d in self.sums.values() for t in d.values()).device
        n = torch.tensor([float(self.count_utterances), float(self.count_batches)], dtype=F64, device=device)
        dist.all_reduce(n, op=dist.ReduceOp.SUM)
        self.count_utterances, self.count_batches = int(n[0].item()), int(n[1].item())

    # ---- hooks --------------------------------------------------------------------------------
    def attach(self) -> None:
        if self._handles:
            return
        for spec in self.specs:
            self._handles.append(spec.module.register_forward_hook(self._make_hook(spec)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _make_hook(self, spec: LayerSpec):
        def hook(module: torch.nn.Module, inputs: tuple, output: Any) -> Any:
            if not isinstance(output, torch.Tensor) or not inputs or not isinstance(inputs[0], torch.Tensor):
                return None
            if self.scaling == "reference":
                return self._reference_forward(spec, inputs[0], output)
            if not torch.is_grad_enabled():
                return None
            x = inputs[0]
            mask, utt = masking.lookup(spec.frame_shape(output), output.device)
            replaced = None
            if not output.requires_grad:
                zero = torch.zeros((), dtype=output.dtype, device=output.device, requires_grad=True)
                replaced = output = output + zero
            record = (x.detach(), mask, utt)
            self._pending[spec.name] = self._pending.get(spec.name, 0) + 1
            output.register_hook(lambda g, spec=spec, record=record: self._on_grad(spec, record, g))
            return replaced

        return hook

    # ---- the reference implementation's per-call statistics --------------------------------------
    def _batch_sums(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        sums = self._batch.get(spec.name)
        if sums is None:
            sums = self._batch[spec.name] = {k: torch.zeros_like(t) for k, t in self.sums[spec.name].items()}
        return sums

    def _augmented_inputs(self, spec: LayerSpec, x: torch.Tensor) -> torch.Tensor:
        a = spec.inputs(x.detach())
        if a.dtype in (torch.float16, torch.bfloat16):
            a = a.float()
        return F.pad(a, (0, 1), value=1.0) if spec.bias else a

    def _reference_forward(self, spec: LayerSpec, x: torch.Tensor, output: torch.Tensor) -> Any:
        """A forward hook as the reference's: A gets this call's mean ``a aᵀ`` whether or not a gradient
        will follow; a gradient hook is left on the output for G (or diag)."""
        a = self._augmented_inputs(spec, x)
        sums = self._batch_sums(spec)
        sums["calls"] += 1
        if self.stat == "kfac":
            flat = a.reshape(-1, a.shape[-1])
            sums["A"] += (flat.T @ flat).to(F64) / flat.shape[0]
        if not torch.is_grad_enabled():
            return None
        replaced = None
        if not output.requires_grad:
            zero = torch.zeros((), dtype=output.dtype, device=output.device, requires_grad=True)
            replaced = output = output + zero
        output.register_hook(lambda g, spec=spec, a=a: self._reference_grad(spec, a, g))
        return replaced

    def _reference_grad(self, spec: LayerSpec, a: torch.Tensor, gy: torch.Tensor) -> None:
        self.fired.add(spec.name)
        # the reference differentiates the batch-mean loss; ours is the sum over the batch
        g = spec.grads(gy.detach()).to(a.dtype) / self._batch_size
        sums = self._batch_sums(spec)
        sums["grad_calls"] += 1
        if self.stat == "kfac":
            flat = g.reshape(-1, g.shape[-1])
            sums["G"] += (flat.T @ flat).to(F64) / flat.shape[0]
            return
        grad = g.reshape(-1, g.shape[-1]).T @ a.reshape(-1, a.shape[-1])  # the call's batch gradient
        sums["sq"] += grad.to(F64).square()

    # ---- batches ------------------------------------------------------------------------------
    def begin_batch(self, batch_size: int) -> None:
        self._batch_size = int(batch_size)

    def end_batch(self, batch_size: int) -> None:
        for name in list(self._buffers):
            self._flush(name)
        for name, batch in self._batch.items():
            for key, t in batch.items():
                self.sums[name][key] += t
        self._batch.clear()
        self._pending.clear()
        self.count_utterances += int(batch_size)
        self.count_batches += 1
        self._batch_size = None

    def discard_batch(self) -> None:
        """Forget a batch whose backward did not run (e.g. the loss failed)."""
        self._pending.clear()
        self._buffers.clear()
        self._batch.clear()
        self._batch_size = None

    def _flush(self, name: str) -> None:
        buf = self._buffers.pop(name)
        self.sums[name]["sq"] += buf.square().sum(0, dtype=F64)

    def _on_grad(self, spec: LayerSpec, record: tuple, gy: torch.Tensor) -> None:
        x, mask, utt = record
        self.fired.add(spec.name)
        a = spec.inputs(x)
        g = spec.grads(gy.detach())
        if a.dtype in (torch.float16, torch.bfloat16):
            a, g = a.float(), g.float()
        g = g.to(a.dtype)
        if a.shape[:2] != g.shape[:2]:
            raise RuntimeError(
                f"{spec.name}: input frames {tuple(a.shape[:2])} != output frames {tuple(g.shape[:2])}"
            )
        if spec.bias:
            a = F.pad(a, (0, 1), value=1.0)
        if mask is not None:
            m = mask.to(a.dtype).unsqueeze(-1)
            g = g * m
            a_m = a * m
            frames = mask.sum()
        else:
            a_m = a
            frames = a.shape[0] * a.shape[1]
        sums = self.sums[spec.name]
        if self.stat == "kfac":
            af, amf, gf = a.reshape(-1, a.shape[-1]), a_m.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
            sums["A"] += (amf.T @ af).to(F64)
            sums["G"] += (gf.T @ gf).to(F64)
            sums["frames"] += frames
            self._pending[spec.name] -= 1
            return
        if self.stat == "ekfac":
            qa, qg = self._rotation(spec, a)
            a_m = a_m @ qa
            g = g @ qg
        sums["frames"] += frames
        per_row = torch.bmm(g.transpose(1, 2), a_m)  # [rows, d_out, d_aug]: Σ_t g aᵀ per row
        rows = per_row.shape[0]
        b = self._batch_size
        if utt is None and rows != b:
            raise RuntimeError(
                f"{spec.name} ran on {rows} rows but the batch has {b} utterances; per-utterance statistics "
                "need batch-first inputs, or wrap the call in curvature.frame_mask(utterances=...)"
            )
        self._pending[spec.name] -= 1
        if utt is None and self._pending[spec.name] == 0 and spec.name not in self._buffers:
            sums["sq"] += per_row.square().sum(0, dtype=F64)
            return
        buf = self._buffers.get(spec.name)
        if buf is None:
            buf = self._buffers[spec.name] = per_row.new_zeros((b,) + per_row.shape[1:])
        if utt is None:
            buf += per_row
        else:
            if int(utt.max()) >= b or int(utt.min()) < 0:
                raise RuntimeError(f"{spec.name}: frame_mask utterance index outside 0..{b - 1}")
            buf.index_add_(0, utt, per_row)
        if self._pending[spec.name] == 0:
            self._flush(spec.name)

    def _rotation(self, spec: LayerSpec, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self._rotations.get(spec.name)
        if cached is None or cached[0].dtype != like.dtype or cached[0].device != like.device:
            base = self.bases[spec.name]
            cached = (base["QA"].to(like), base["QG"].to(like))
            self._rotations[spec.name] = cached
        return cached
