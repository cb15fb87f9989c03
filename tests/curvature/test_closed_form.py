"""Curvature statistics against brute force from per-utterance autograd gradients (float64)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tts_adapt.curvature import estimate, frame_mask
from tts_adapt.models.styletts2.norm import weight_norm

torch_f64 = torch.float64


def per_example_grads(model: nn.Module, layer: nn.Module, loss_fn, batches) -> torch.Tensor:
    """``[N, d_out, d_in (+1)]`` gradients of each utterance's loss w.r.t. ``[W, b]`` of ``layer``."""
    params = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    out = []
    for batch in batches:
        losses = loss_fn(model, batch)
        for n in range(losses.numel()):
            grads = torch.autograd.grad(losses[n], params, retain_graph=True)
            w = grads[0].reshape(grads[0].shape[0], -1)
            out.append(torch.cat([w, grads[1][:, None]], 1) if len(grads) > 1 else w)
    return torch.stack(out)


class OneLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def softmax_ce(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y, reduction="none")


@pytest.fixture
def linear_case():
    torch.manual_seed(0)
    model = OneLinear().double()
    x = torch.randn(10, 4, dtype=torch_f64)
    y = torch.randint(0, 3, (10,))
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    return model, x, batches


def test_kfac_one_linear_t1_equals_brute_force(linear_case):
    model, x, batches = linear_case
    curv = estimate(model, batches, softmax_ce, "kfac", progress=False)
    a = torch.cat([x, torch.ones(10, 1, dtype=torch_f64)], 1)
    grads = per_example_grads(model, model.fc, softmax_ce, batches)
    g = grads[:, :, -1]  # the bias gradient is the output gradient when T = 1
    torch.testing.assert_close(curv.layers["fc"]["A"], a.T @ a / 10, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(curv.layers["fc"]["G"], g.T @ g / 10, rtol=1e-12, atol=1e-14)
    assert curv.num_utterances == 10 and curv.info["fc"]["frames"] == 10
    # with T = 1 and one example, A ⊗ G is exactly the per-example outer product; averaged it is not
    assert not torch.allclose(
        torch.kron(curv.layers["fc"]["A"], curv.layers["fc"]["G"]),
        torch.einsum(
            "ni,nj->ij", grads.transpose(1, 2).reshape(10, -1), grads.transpose(1, 2).reshape(10, -1)
        )
        / 10,
    )


def test_diag_is_mean_squared_per_example_gradient(linear_case):
    model, _, batches = linear_case
    curv = estimate(model, batches, softmax_ce, "diag", progress=False)
    grads = per_example_grads(model, model.fc, softmax_ce, batches)
    torch.testing.assert_close(curv.layers["fc"]["diag"], grads.pow(2).mean(0), rtol=1e-12, atol=1e-15)
    batch_grad_sq = (
        sum(per_example_grads(model, model.fc, softmax_ce, [b]).sum(0).pow(2) for b in batches) / 10
    )
    assert not torch.allclose(curv.layers["fc"]["diag"], batch_grad_sq)  # not squared batch gradients


def test_ekfac_scale_is_brute_force_in_the_eigenbasis(linear_case):
    model, _, batches = linear_case
    kfac = estimate(model, batches, softmax_ce, "kfac", progress=False)
    curv = estimate(model, batches, softmax_ce, "ekfac", progress=False)
    qa, qg = curv.layers["fc"]["QA"], curv.layers["fc"]["QG"]
    a, g = kfac.layers["fc"]["A"], kfac.layers["fc"]["G"]
    eye = torch.eye
    torch.testing.assert_close(qa.T @ qa, eye(5, dtype=torch_f64), atol=1e-12, rtol=0)
    for q, m in ((qa, a), (qg, g)):  # eigenvectors: QᵀMQ is diagonal
        d = q.T @ m @ q
        torch.testing.assert_close(d - torch.diag(torch.diag(d)), torch.zeros_like(d), atol=1e-12, rtol=0)
    grads = per_example_grads(model, model.fc, softmax_ce, batches)
    brute = (qg.T @ grads @ qa).pow(2).mean(0)
    torch.testing.assert_close(curv.layers["fc"]["scale"], brute, rtol=1e-10, atol=1e-14)
    kfac_rotated = torch.outer(torch.diag(qg.T @ g @ qg), torch.diag(qa.T @ a @ qa))
    assert not torch.allclose(curv.layers["fc"]["scale"], kfac_rotated, rtol=1e-3)  # not just KFAC rotated


class SeqModel(nn.Module):
    """Linear -> masked dilated weight-normed conv -> Linear, padding-safe when masks are applied."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.conv = weight_norm(nn.Conv1d(4, 5, 3, padding=2, dilation=2))
        self.out = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        m = valid.unsqueeze(-1).to(x.dtype)
        h = torch.tanh(self.inp(x)) * m
        h = torch.tanh(self.conv(h.transpose(1, 2)).transpose(1, 2)) * m
        return self.out(h)


def seq_loss(model, batch):
    x, y, lengths = batch
    valid = torch.arange(x.shape[1])[None] < lengths[:, None]
    with frame_mask(valid):
        out = model(x, valid)
    err = ((out - y) ** 2).sum(-1) * valid
    return err.sum(-1)


def seq_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = [7, 5, 3, 6]
    utts = [
        (torch.randn(t, 3, generator=g, dtype=torch_f64), torch.randn(t, 2, generator=g, dtype=torch_f64))
        for t in lengths
    ]
    return utts


def pad_batch(utts, extra: int = 0):
    width = max(u[0].shape[0] for u in utts) + extra
    x = torch.zeros(len(utts), width, 3, dtype=torch_f64)
    y = torch.zeros(len(utts), width, 2, dtype=torch_f64)
    x += 9.0  # garbage in the padding: it must not matter
    for i, (a, b) in enumerate(utts):
        x[i, : a.shape[0]] = a
        y[i, : b.shape[0]] = b
    return x, y, torch.tensor([u[0].shape[0] for u in utts])


@pytest.mark.parametrize("method", ["kfac", "diag", "ekfac"])
def test_padding_does_not_change_factors(method):
    torch.manual_seed(1)
    model = SeqModel().double().eval()
    utts = seq_data()
    alone = estimate(
        model,
        [pad_batch([u]) for u in utts],
        seq_loss,
        method,
        targets=["inp", "conv", "out"],
        layer_types=("linear", "conv1d"),
        progress=False,
    )
    padded = estimate(
        model,
        [pad_batch(utts[:2], extra=3), pad_batch(utts[2:], extra=1)],
        seq_loss,
        method,
        targets=["inp", "conv", "out"],
        layer_types=("linear", "conv1d"),
        progress=False,
    )
    for name in alone.layers:
        for key, t in alone.layers[name].items():
            if key in ("QA", "QG"):  # eigenvectors are defined up to sign
                continue
            torch.testing.assert_close(padded.layers[name][key], t, rtol=1e-10, atol=1e-12)
    assert padded.info["inp"]["frames"] == sum(u[0].shape[0] for u in utts)


def test_conv1d_kfc_and_diag_match_brute_force():
    torch.manual_seed(2)
    model = SeqModel().double().eval()
    utts = seq_data(3)
    batches = [pad_batch(utts[:2]), pad_batch(utts[2:])]
    kfac = estimate(model, batches, seq_loss, "kfac", targets=["conv"], progress=False)
    diag = estimate(model, batches, seq_loss, "diag", targets=["conv"], progress=False)
    # brute force on a plain conv holding the effective weight as a leaf
    conv = model.conv
    w_eff = (conv.weight_g * conv.weight_v / conv.weight_v.norm(dim=(1, 2), keepdim=True)).detach()
    plain = nn.Conv1d(4, 5, 3, padding=2, dilation=2).double()
    plain.weight.data.copy_(w_eff)
    plain.bias.data.copy_(conv.bias.detach())
    model.conv = plain
    grads = per_example_grads(model, plain, seq_loss, batches)
    torch.testing.assert_close(diag.layers["conv"]["diag"], grads.pow(2).mean(0), rtol=1e-10, atol=1e-14)
    # A: mean over valid output frames of the unfolded patches [x_{t-2}, x_t, x_{t+2}] per channel, plus 1
    patches = []
    for u in utts:
        h = torch.tanh(model.inp(u[0])).detach().T  # [4, T]
        hp = F.pad(h, (2, 2))
        for t in range(h.shape[1]):
            patches.append(torch.cat([hp[:, t : t + 5 : 2].reshape(-1), torch.ones(1, dtype=torch_f64)]))
    p = torch.stack(patches)
    torch.testing.assert_close(kfac.layers["conv"]["A"], p.T @ p / len(p), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["inp", "conv", "out"])
def test_kfac_sequence_layers_match_brute_force(name):
    """KFAC for sequence layers (T > 1), padded batches: ``G = (1/N) Σ_n Σ_t g_{n,t} g_{n,t}ᵀ`` with
    ``g_{n,t} = ∂ℓ_n/∂s_{n,t}`` taken by autograd on each utterance alone (unpadded), and
    ``A = mean_{n,t} a_{n,t} a_{n,t}ᵀ`` over real frames of the inputs recorded there (KFC patches for
    the conv). Neither factor reduces to the T = 1 case: utterances have 3 to 7 frames."""
    torch.manual_seed(4)
    model = SeqModel().double().eval()
    utts = seq_data(5)
    batches = [pad_batch(utts[:2], extra=2), pad_batch(utts[2:], extra=1)]
    kw = {"targets": [name], "layer_types": ("linear", "conv1d"), "progress": False}
    curv = estimate(model, batches, seq_loss, "kfac", **kw)
    layer = getattr(model, name)
    seen: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):
        seen["a"], seen["s"] = inputs[0], output

    handle = layer.register_forward_hook(keep)
    gg = torch.zeros(curv.layers[name]["G"].shape, dtype=torch_f64)
    aa = torch.zeros(curv.layers[name]["A"].shape, dtype=torch_f64)
    frames = 0
    try:
        for x, y in utts:
            loss = seq_loss(model, (x[None], y[None], torch.tensor([x.shape[0]])))[0]
            (g,) = torch.autograd.grad(loss, seen["s"])
            a = seen["a"].detach()
            if name == "conv":  # [1, C, T] -> frames x features; patches [x_{t-2}, x_t, x_{t+2}] per channel
                g = g[0].T
                ap = F.pad(a[0], (2, 2))
                a = torch.stack([ap[:, t : t + 5 : 2].reshape(-1) for t in range(a.shape[-1])])
            else:
                g, a = g[0], a[0]
            a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=torch_f64)], 1)
            gg += g.T @ g
            aa += a.T @ a
            frames += a.shape[0]
    finally:
        handle.remove()
    assert frames == sum(u[0].shape[0] for u in utts)
    torch.testing.assert_close(curv.layers[name]["G"], gg / len(utts), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(curv.layers[name]["A"], aa / frames, rtol=1e-10, atol=1e-13)


class Shared(nn.Module):
    """One Linear applied twice (ALBERT-style weight sharing) plus a per-utterance loop."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.fc(torch.tanh(self.fc(x))))).squeeze(-1)


def shared_loss(model, batch):
    return model(batch).pow(2).sum(-1)


def loop_loss(model, batch):
    out = []
    for i in range(batch.shape[0]):
        with frame_mask(utterances=[i]):
            out.append(model(batch[i : i + 1]).pow(2).sum())
    return torch.stack(out)


def test_shared_weights_and_per_utterance_loops():
    torch.manual_seed(3)
    model = Shared().double()
    x = torch.randn(6, 4, 3, dtype=torch_f64)
    batches = [x[:3], x[3:]]
    grads = per_example_grads(model, model.fc, shared_loss, batches)
    for loss in (shared_loss, loop_loss):
        diag = estimate(model, batches, loss, "diag", targets=["fc"], progress=False)
        torch.testing.assert_close(diag.layers["fc"]["diag"], grads.pow(2).mean(0), rtol=1e-10, atol=1e-14)
    kfac = estimate(model, batches, shared_loss, "kfac", targets=["fc"], progress=False)
    assert kfac.info["fc"]["frames"] == 2 * 6 * 4  # two calls per forward, every frame counted


def test_bad_inputs_are_clear_errors():
    torch.manual_seed(0)
    model = OneLinear().double()
    batch = (torch.randn(2, 4, dtype=torch_f64), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="per-utterance"):
        estimate(model, [batch], lambda m, b: softmax_ce(m, b).sum(), "kfac", progress=False)
    with pytest.raises(ValueError, match="two passes"):
        estimate(model, iter([batch]), softmax_ce, "ekfac", progress=False)
    with pytest.raises(ValueError, match="unknown curvature method"):
        estimate(model, [batch], softmax_ce, "fisher", progress=False)
    with pytest.raises(ValueError, match="no gradient path"):
        estimate(model, [batch], lambda m, b: torch.zeros(2, requires_grad=False), "kfac", progress=False)
    lstm = nn.Sequential(nn.LSTM(3, 2))
    with pytest.raises(ValueError, match="LSTM"):
        estimate(lstm, [batch], softmax_ce, "kfac", targets=["0"], layer_types=("lstm",), progress=False)
    assert [p.requires_grad for p in model.parameters()] == [True, True]  # restored after a failure
