"""The Laplace prior penalty: low-rank forms equal the dense ΔW forms, zero at init, LoRA-only gradients."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.adapters import apply_lora, dense_delta, lora_layers
from tts_adapt.curvature import estimate
from tts_adapt.priors import LaplacePrior

from ..adapters.toys import make_toy, randomize_lora
from ..curvature.test_store_resume import TARGETS, TYPES, noisy_loss, toy_batches

METHODS = ("l2sp", "diag", "kfac", "ekfac")


@pytest.fixture(scope="module")
def curvatures():
    model = make_toy(dtype=torch.float64)
    return {
        m: estimate(model, toy_batches(3), noisy_loss, m, TARGETS, layer_types=TYPES, progress=False)
        for m in METHODS
    }


def lora_model(rank: int = 2):
    model = make_toy(dtype=torch.float64)
    apply_lora(model, targets=TARGETS, rank=rank, alpha=2 * rank, layer_types=TYPES)
    return model


def explicit_h(t: dict, method: str, n_in: int, n_out: int) -> torch.Tensor:
    """The curvature of one layer as a dense matrix over column-major ``vec(ΔW[:, :n_in])``, built from
    the stored factors alone (Kronecker product / diagonal / eigenbasis), not by the implementation."""
    if method == "l2sp":
        return torch.eye(n_in * n_out, dtype=torch.float64)
    if method == "diag":
        return torch.diag(t["diag"][:, :n_in].T.reshape(-1))
    if method == "kfac":
        return torch.kron(t["A"][:n_in, :n_in], t["G"])
    rot = torch.kron(t["QA"], t["QG"])  # vec(QGᵀ X QA) = (QA ⊗ QG)ᵀ vec(X)
    h_full = rot @ torch.diag(t["scale"].T.reshape(-1)) @ rot.T
    return h_full[: n_in * n_out, : n_in * n_out]  # the bias column is the last block of vec


def brute(curv, model, strength):
    """λ/2 Σ vec(ΔW)ᵀ H vec(ΔW) with H built explicitly (Kronecker product / diagonal matrix)."""
    total = torch.zeros((), dtype=torch.float64)
    for name, layer in lora_layers(model).items():
        dw = dense_delta(layer)["weight"].reshape(curv.info[name]["d_out"], -1)
        vec = dw.T.reshape(-1)  # column-major vec(ΔW)
        h = explicit_h(curv.layers[name], curv.method, dw.shape[1], dw.shape[0])
        total = total + vec @ h @ vec
    return 0.5 * strength * total


@pytest.mark.parametrize("method", METHODS)
def test_low_rank_penalty_equals_dense_and_explicit_hessian(curvatures, method):
    model = lora_model()
    prior = LaplacePrior(model, curvatures[method], strength=7.0)
    assert prior.penalty().item() == 0.0  # B = 0 at LoRA init
    randomize_lora(model)
    pen = prior.penalty()
    torch.testing.assert_close(pen, prior.dense_penalty(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(pen, brute(curvatures[method], model, 7.0), rtol=1e-10, atol=1e-12)
    assert pen.item() > 0
    params = [p for p in model.parameters() if p.requires_grad]
    dense_grads = torch.autograd.grad(prior.dense_penalty(), params)
    for g_low, g_dense in zip(torch.autograd.grad(pen, params, retain_graph=True), dense_grads):
        torch.testing.assert_close(
            g_low, g_dense, rtol=1e-9, atol=1e-12
        )  # incl. the hand-written KFAC backward
    pen.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and all(".lora_" in n for n in with_grad)
    assert {n.split(".lora_")[0] for n in with_grad if ".lora_B." in n} == {"inp", "conv", "block.fc", "head"}


def test_kfac_trace_identity_is_what_the_prior_computes(curvatures):
    """s²·tr((Bᵀ G B)(A A_f Aᵀ)) = tr(G ΔW A_f ΔWᵀ) for ΔW = s·B·A."""
    model = lora_model(rank=3)
    randomize_lora(model, seed=4)
    layer = lora_layers(model)["inp"]
    t = curvatures["kfac"].layers["inp"]
    a_f, g = t["A"][:5, :5], t["G"]
    b, a = layer.lora_B["default"].weight, layer.lora_A["default"].weight
    s = layer.scaling["default"]
    dw = s * b @ a
    low = s**2 * torch.trace((b.T @ g @ b) @ (a @ a_f @ a.T))
    torch.testing.assert_close(low, torch.trace(g @ dw @ a_f @ dw.T), rtol=1e-12, atol=1e-14)
    prior = LaplacePrior(model, curvatures["kfac"], strength=2.0)
    assert prior.layer_penalties()["inp"] == pytest.approx(low.item(), rel=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_full_fine_tuning_penalises_w_minus_w0(curvatures, method):
    from tts_adapt.curvature import make_spec

    model = make_toy(dtype=torch.float64)
    specs = {n: make_spec(n, model.get_submodule(n)) for n in curvatures[method].targets}
    w0 = {n: s.weight_matrix().detach().clone() for n, s in specs.items()}
    prior = LaplacePrior(model, curvatures[method], strength=3.0)
    assert prior.mode == "full" and prior.penalty().item() == 0.0
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    # oracle: the dense H over [W | b] built from the stored factors, bias column included
    expected = torch.zeros((), dtype=torch.float64)
    for n, s in specs.items():
        dw = (s.weight_matrix() - w0[n]).detach()
        vec = dw.T.reshape(-1)
        h = explicit_h(curvatures[method].layers[n], method, dw.shape[1], dw.shape[0])
        expected = expected + vec @ h @ vec
    pen = prior.penalty()
    assert expected.item() > 0
    torch.testing.assert_close(pen, 1.5 * expected, rtol=1e-10, atol=1e-12)
    pen.backward()
    assert (
        model.conv.weight_v.grad is not None and model.inp.bias.grad is not None
    )  # through weight norm + bias


@pytest.mark.parametrize("method", METHODS)
def test_shape_groups_match_layer_by_layer(method):
    """Layers of equal shape are evaluated batched; a disabled adapter falls back to layer by layer."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        *[nn.Linear(4, 4) for _ in range(5)], nn.Linear(4, 2), nn.Linear(2, 2, bias=False), nn.Linear(2, 2)
    ).double()
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    batches = [(x, torch.randn(6, 3, 2, dtype=torch.float64))]  # last two: same shape, with/without bias
    curv = estimate(model, batches, lambda m, b: ((m(b[0]) - b[1]) ** 2).sum((1, 2)), method, progress=False)
    apply_lora(model, rank=2, alpha=3)
    prior = LaplacePrior(model, curv, strength=2.0, missing="error")
    assert sorted(len(g["terms"]) for g in prior._groups) == [1, 1, 1, 5]  # five 4x4 layers, one 2x4, ...
    randomize_lora(model)
    prior.always_batch = True  # diag/EKFAC groups are batched on GPUs only by default
    torch.testing.assert_close(prior.penalty(), prior.dense_penalty(), rtol=1e-10, atol=1e-12)
    assert prior.penalty().item() == pytest.approx(sum(prior.layer_penalties().values()), rel=1e-10)
    terms = prior.quadratic_terms()  # per layer, differentiable (used for per-component strengths)
    assert [float(q) for q in terms] == pytest.approx(list(prior.layer_penalties().values()), rel=1e-10)
    weights = torch.arange(1.0, len(terms) + 1, dtype=torch.float64)
    params = [p for p in model.parameters() if p.requires_grad]
    g_terms = torch.autograd.grad((weights * torch.stack(terms)).sum(), params)
    g_ref = torch.autograd.grad(
        sum(w * prior._lora_quadratic(t) for w, t in zip(weights, prior._terms)), params
    )
    for x, y in zip(g_terms, g_ref):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
    model[1].enable_adapters(False)  # falls back to layer-by-layer for its group
    assert prior.layer_penalties()["1"] == 0.0
    torch.testing.assert_close(prior.penalty(), prior.dense_penalty(), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")  # a second, LSTM-only adapter
def test_checks_and_options(curvatures):
    model = lora_model()
    apply_lora(model, targets=["lstm"], layer_types=("lstm",), adapter_name="other")
    # the LSTM LoRA has no kfac curvature
    with pytest.raises(ValueError, match="no curvature"):
        LaplacePrior(model, curvatures["kfac"], strength=1.0)
    prior = LaplacePrior(model, curvatures["kfac"], strength=1.0, missing="skip")
    assert "lstm" not in prior.layer_names
    # l2sp needs no data and covers every LoRA layer, LSTMs included
    randomize_lora(model)
    l2 = LaplacePrior(model, "l2sp", strength=2.0)
    assert "lstm" in l2.layer_names
    expected = sum(
        d.pow(2).sum() for layer in lora_layers(model).values() for d in dense_delta(layer).values()
    )
    torch.testing.assert_close(l2.penalty(), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="another model"):
        LaplacePrior(make_toy(d=8, dtype=torch.float64), curvatures["kfac"], strength=1.0)
    with pytest.raises(ValueError, match="strength"):
        LaplacePrior(lora_model(), curvatures["kfac"], strength=-1.0)


def test_prior_follows_dtype_and_device_moves(curvatures):
    model = lora_model()
    prior = LaplacePrior(model, curvatures["kfac"], strength=1.0, dtype=torch.float32)
    assert all(b.dtype == torch.float32 for b in prior.buffers())
    prior = prior.to(torch.float64)
    randomize_lora(model)
    torch.testing.assert_close(prior.penalty(), prior.dense_penalty(), rtol=1e-10, atol=1e-12)
