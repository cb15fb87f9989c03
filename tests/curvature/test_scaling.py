"""``--scaling reference``: the reference implementation's curvature, against a replica of its hooks.

The oracle is a brute-force replica of the hooks of the paper's reference implementation
(``tts/train_finetune_peft.py`` of idiap/bayesian-peft, ``--compute_hessian``), written here from its
equations: on every *forward call* of a target Linear a forward hook adds the mean over the call's
positions of the per-position outer products ``a aᵀ`` to A; on every call the backward reaches, a full
backward hook adds the mean of ``g gᵀ`` (``g``: gradient of the batch-mean loss w.r.t. the call's
output) to G; EWC (v2) adds the square of the call's summed gradient ``Σ g aᵀ``. At the end each is
divided by the number of iterations, and the penalty is ``λ · Σ ΔW ⊙ (G ΔW A)`` with ``ΔW`` peft's
``get_delta_weight``, no ½. Outer products are formed per position here (the reference's form), never
as GEMMs over frames (ours).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tts_adapt.adapters import apply_lora
from tts_adapt.curvature import Curvature, estimate
from tts_adapt.curvature.objectives import get_objective
from tts_adapt.priors import LaplacePrior
from tts_adapt.priors.scaling import apply_scaling

from .test_objectives import make_batch

F64 = torch.float64


class SharedLayer(nn.Module):
    """``shared`` is called three times per forward (as ALBERT's one layer is called 12 times), once more
    without a gradient, and ``head`` once."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.shared(x)  # counted in A by the reference's forward hook, never reached by a gradient
        h = x
        for _ in range(3):
            h = torch.tanh(self.shared(h))
        return self.head(h)


def per_utterance(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).pow(2).mean(dim=(1, 2))


def toy_batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, t, 3, generator=g, dtype=F64) for b, t in ((2, 4), (3, 5), (1, 2))]


def test_toy_reference_kfac_and_ewc_equal_the_replica_of_the_reference_hooks():
    torch.manual_seed(0)
    model = SharedLayer().double()
    batches = toy_batches()
    names = ["head", "shared"]
    kfac = estimate(model, batches, per_utterance, "kfac", names, progress=False, scaling="reference")
    diag = estimate(model, batches, per_utterance, "diag", names, progress=False, scaling="reference")
    replica = reference_replica(model, names, batches)
    for name in names:
        d_in = model.get_submodule(name).in_features
        torch.testing.assert_close(
            kfac.layers[name]["A"][:d_in, :d_in], replica[name]["A"], rtol=1e-12, atol=1e-14
        )
        torch.testing.assert_close(kfac.layers[name]["G"], replica[name]["G"], rtol=1e-12, atol=1e-16)
        torch.testing.assert_close(
            diag.layers[name]["diag"][:, :d_in], replica[name]["ewc"], rtol=1e-12, atol=1e-16
        )
    assert kfac.extra["scaling"] == "reference" and kfac.extra["batches"] == 3
    # four forward calls and three gradients per batch for the shared layer, one of each for the head
    assert (kfac.info["shared"]["calls"], kfac.info["shared"]["grad_calls"]) == (12, 9)
    assert (kfac.info["head"]["calls"], kfac.info["head"]["grad_calls"]) == (3, 3)
    # the shared layer's three per-call means are not one mean over three times the frames
    ours = estimate(model, batches, per_utterance, "kfac", names, progress=False)
    frames = float(ours.info["shared"]["frames"])
    pooled = ours.layers["shared"]["G"] * ours.num_utterances / frames  # the former conversion, G * N / F
    assert not torch.allclose(pooled, kfac.layers["shared"]["G"], rtol=0.5)


def reference_replica(model, names, batches):
    """The reference's KFAC and EWC (v2) hooks on ``names``, per-position outer products, divided by the
    iterations. One departure, also ours: EWC pairs each call's output gradient with that call's own
    input; the reference keeps one input per module (the last forward's), which is the same thing for
    a layer called once and pairs other calls' inputs for a shared one (docs/method.md)."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    handles = []
    for name in names:
        layer = model.get_submodule(name)
        d_out, d_in = layer.weight.shape
        st = stats[name] = {
            "A": torch.zeros(d_in, d_in, dtype=F64),
            "G": torch.zeros(d_out, d_out, dtype=F64),
            "ewc": torch.zeros(d_out, d_in, dtype=F64),
        }
        graph_inputs: list[torch.Tensor] = []

        def forward_hook(module, args, output, st=st, graph_inputs=graph_inputs):
            a = args[0].detach().double()
            total = torch.zeros(a.shape[-1], a.shape[-1], dtype=F64)
            rows = a.reshape(-1, a.shape[-1])
            for row in rows:  # one outer product per position
                total += torch.outer(row, row)
            st["A"] += total / rows.shape[0]
            if torch.is_grad_enabled():
                graph_inputs.append(rows)

        def backward_hook(module, grad_input, grad_output, st=st, graph_inputs=graph_inputs):
            g = grad_output[0].detach().double().reshape(-1, grad_output[0].shape[-1])
            total = torch.zeros(g.shape[-1], g.shape[-1], dtype=F64)
            for row in g:
                total += torch.outer(row, row)
            st["G"] += total / g.shape[0]
            a = graph_inputs.pop()  # the backward visits the calls in reverse order
            grad = sum(torch.outer(gr, ar) for gr, ar in zip(g, a, strict=True))
            st["ewc"] += grad**2

        handles.append(layer.register_forward_hook(forward_hook))
        handles.append(layer.register_full_backward_hook(backward_hook))
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        for batch in batches:
            per_utterance(model, batch).mean().backward()
    finally:
        for h in handles:
            h.remove()
        for p in model.parameters():
            p.grad = None
    return {n: {k: v / len(batches) for k, v in st.items()} for n, st in stats.items()}


def test_toy_reference_penalty_is_lambda_times_the_reference_sum_without_half():
    """Not a ratio of two of our penalties: the reference's own sum over peft's ΔW, on its G and A."""
    torch.manual_seed(0)
    model = SharedLayer().double()
    batches = toy_batches()
    names = ["head", "shared"]
    replica = reference_replica(model, names, batches)
    kfac = estimate(model, batches, per_utterance, "kfac", names, progress=False, scaling="reference")
    apply_lora(model, targets=names, rank=2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # zero at init: give the shift a value
                p.copy_(0.1 * torch.randn_like(p))
    lam = 1000.0
    expected = 0.0
    for name in names:
        delta = model.get_submodule(name).get_delta_weight("default").detach().double()
        expected += float(torch.sum(delta * (replica[name]["G"] @ delta @ replica[name]["A"])))
    scaled, factor = apply_scaling(kfac, "reference")
    penalty = float(LaplacePrior(model, scaled, factor * lam).penalty())
    assert expected > 0 and penalty == pytest.approx(lam * expected, rel=1e-9)


def test_micro_model_reference_kfac_equals_the_replica_on_albert_s_shared_layer(micro_model):
    """The real objective's text side (PL-BERT, duration and diffusion terms) on the micro model:
    PL-BERT's one ALBERT layer runs once per hidden layer (2 here, 12 in LibriTTS's), and the
    diffusion sampler calls PL-BERT's consumers several times."""
    from tts_adapt.models.styletts2.model import StyleTTS2

    model = StyleTTS2(micro_model.config)
    model.load_state_dict(micro_model.state_dict())
    model.eval()
    model.text_aligner.token_mask_prob = 0.0  # no global-RNG draws: both passes see the same forward
    names = [n for n, m in model.named_modules() if n.startswith("bert.") and isinstance(m, nn.Linear)]
    shared = next(n for n in names if "attention.query" in n)
    layers = [shared, "bert_encoder", next(n for n in names if "ffn_output" in n)]
    objective = get_objective("text", max_len=80)
    batches = [make_batch(((10, 90), (7, 84)))]
    curv = estimate(model, batches, objective, "kfac", layers, progress=False, scaling="reference")
    replica = _micro_replica(model, layers, batches, objective)
    calls = model.config["plbert_model_params"]["num_hidden_layers"]
    assert curv.info[shared]["grad_calls"] == calls * len(batches)
    for name in layers:
        d_in = model.get_submodule(name).in_features
        for ours, theirs in (
            (curv.layers[name]["A"][:d_in, :d_in], replica[name]["A"]),
            (curv.layers[name]["G"], replica[name]["G"]),
        ):
            torch.testing.assert_close(ours, theirs, rtol=2e-4, atol=1e-6 * float(theirs.abs().max()))


def _micro_replica(model, names, batches, objective):
    """The reference hooks on the micro model, the loss a batch mean, weights differentiated."""
    stats = {}
    handles = []
    for name in names:
        layer = model.get_submodule(name)
        d_out, d_in = layer.weight.shape
        st = stats[name] = {
            "A": torch.zeros(d_in, d_in, dtype=F64),
            "G": torch.zeros(d_out, d_out, dtype=F64),
        }

        def forward_hook(module, args, output, st=st):
            a = args[0].detach().double()
            outer = a[..., :, None] @ a[..., None, :]
            st["A"] += outer.reshape(-1, *outer.shape[-2:]).mean(0)

        def backward_hook(module, grad_input, grad_output, st=st):
            g = grad_output[0].detach().double()
            outer = g[..., :, None] @ g[..., None, :]
            st["G"] += outer.reshape(-1, *outer.shape[-2:]).mean(0)

        handles.append(layer.register_forward_hook(forward_hook))
        handles.append(layer.register_full_backward_hook(backward_hook))
    grads = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        for batch in batches:
            objective(model, batch).mean().backward()
    finally:
        for h in handles:
            h.remove()
        for p in model.parameters():
            p.grad = None
            p.requires_grad_(grads[id(p)])
    return {n: {k: v / len(batches) for k, v in st.items()} for n, st in stats.items()}


def test_scaling_and_file_must_agree():
    ours = Curvature("kfac", {"fc": {"A": torch.eye(2), "G": torch.eye(2)}}, {"fc": {}})
    reference = Curvature("kfac", ours.layers, {"fc": {}}, extra={"scaling": "reference"})
    assert apply_scaling(ours, "ours") == (ours, 1.0)
    assert apply_scaling(reference, "reference") == (reference, 2.0)
    with pytest.raises(ValueError, match="curvature --scaling reference"):
        apply_scaling(ours, "reference")
    with pytest.raises(ValueError, match="--curvature-scaling reference"):
        apply_scaling(reference, "ours")
    assert apply_scaling("l2sp", "reference") == ("l2sp", 2.0)
    assert apply_scaling("l2sp", "ours") == ("l2sp", 1.0)
    with pytest.raises(ValueError, match="ours, reference"):
        apply_scaling("l2sp", "paper")


def test_reference_scaling_refuses_what_the_reference_does_not_define():
    model = SharedLayer().double()
    with pytest.raises(ValueError, match="EKFAC"):
        estimate(
            model, toy_batches(), per_utterance, "ekfac", ["shared"], progress=False, scaling="reference"
        )
    conv = nn.Sequential(nn.Conv1d(3, 3, 3)).double()
    with pytest.raises(ValueError, match="nn.Linear layers only"):
        estimate(
            conv,
            [torch.randn(1, 3, 5, dtype=F64)],
            lambda m, x: m(x).pow(2).mean((1, 2)),
            "kfac",
            ["0"],
            progress=False,
            scaling="reference",
        )
