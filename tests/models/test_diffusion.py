"""Style diffusion: official keys/shapes, golden replays of the official sampler, RNG order, loss."""

from __future__ import annotations

import importlib.util
import json
from copy import deepcopy
from pathlib import Path

import pytest
import torch
import yaml

from tts_adapt.models.styletts2.diffusion import (
    KarrasSchedule,
    StyleDiffusion,
    build_diffusion,
)


def _build_from_config(path: Path) -> StyleDiffusion:
    cfg = yaml.safe_load(path.read_text())
    mp, bert = cfg["model_params"], cfg["plbert_model_params"]
    d = mp["diffusion"]
    return build_diffusion(
        mp["style_dim"],
        bert["hidden_size"],
        bert["max_position_embeddings"],
        d["transformer"],
        d["dist"],
        d["embedding_mask_proba"],
    )


def _load_fill(fixtures_dir: Path):
    spec = importlib.util.spec_from_file_location("styletts2_fill", fixtures_dir / "fill_set" / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def set_a(fixtures_dir: Path):
    """Set A: the official-format checkpoint loaded strictly, and its golden outputs."""
    folder = fixtures_dir / "checkpoint_set"
    model = _build_from_config(folder / "tiny_config.yml").eval()
    ckpt = torch.load(folder / "tiny_epochs_2nd.pth", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["net"]["diffusion"], strict=True)
    golden = torch.load(folder / "tiny_golden.pt", map_location="cpu", weights_only=True)
    return model, golden


@pytest.fixture(scope="module")
def set_b(fixtures_dir: Path):
    """Set B: the module built from its config, the raw fill, and the golden outputs."""
    folder = fixtures_dir / "fill_set"
    model = _build_from_config(folder / "tiny_config.yml").eval()
    filled = _load_fill(fixtures_dir).fill_state_dict("diffusion", model.state_dict())
    model.load_state_dict(filled, strict=True)
    golden = torch.load(folder / "tiny_golden.pt", map_location="cpu", weights_only=True)
    return model, filled, golden


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


# --- layout -------------------------------------------------------------------------------------------


def test_libritts_keys_shapes_aliases_and_param_count(fixtures_dir: Path) -> None:
    manifest = json.loads((fixtures_dir / "libritts_manifest.json").read_text())
    cfg, bert = manifest["config"], manifest["aux_configs"]["bert"]["AlbertConfig_kwargs"]
    d = cfg["diffusion"]
    model = build_diffusion(
        cfg["style_dim"],
        bert["hidden_size"],
        bert["max_position_embeddings"],
        d["transformer"],
        d["dist"],
        d["embedding_mask_proba"],
    )
    state = model.state_dict()
    expected = manifest["modules"]["diffusion"]
    assert list(state) == list(expected)  # same keys in the same order
    assert {k: list(v.shape) for k, v in state.items()} == expected
    aliases = manifest["aliased_state_dict_keys"]["diffusion"]
    assert len(aliases) == len(expected) // 2
    for unet_key, net_key in aliases.items():
        assert state[unet_key].data_ptr() == state[net_key].data_ptr(), unet_key
    assert sum(p.numel() for p in model.parameters()) == manifest["param_counts"]["diffusion"]
    assert model.sigma_data == d["dist"]["sigma_data"]


def test_builder_rejects_bad_config() -> None:
    transformer = {"num_layers": 1, "num_heads": 2, "head_features": 8, "multiplier": 2}
    dist = {"sigma_data": 0.2, "mean": -3.0, "std": 1.0}
    from tts_adapt.models.styletts2.diffusion import Transformer1d

    single = build_diffusion(8, 16, 32, transformer, dist, 0.1, multispeaker=False)
    assert isinstance(single.unet, Transformer1d) and single.unet is single.diffusion.net
    with pytest.raises(ValueError, match="dist is missing"):
        build_diffusion(8, 16, 32, transformer, {"mean": -3.0, "std": 1.0}, 0.1)
    with pytest.raises(ValueError, match="unsupported keys"):
        build_diffusion(8, 16, 32, {**transformer, "use_rel_pos": True}, dist, 0.1)


# --- golden set A ---------------------------------------------------------------------------------------


def test_set_a_schedule_and_denoiser(set_a) -> None:
    model, g = set_a
    assert torch.equal(KarrasSchedule(1e-4, 3.0, rho=9.0)(int(g["sampler_num_steps"])), g["sampler_sigmas"])
    with torch.no_grad():
        out = model.denoise_fn(
            g["denoise_x"], sigma=float(g["denoise_sigma"]), embedding=g["bert_dur"], features=g["ref_s"]
        )
        assert _max_diff(out, g["denoise_out"]) < 1e-5
        # sigma_data is read from the config, not the state dict: a different value changes the output.
        model.sigma_data = 0.2
        try:
            other = model.denoise_fn(g["denoise_x"], sigma=0.5, embedding=g["bert_dur"], features=g["ref_s"])
        finally:
            model.sigma_data = 0.175
    assert _max_diff(other, g["denoise_out"]) > 1e-3


def test_set_a_sampler_replay(set_a) -> None:
    model, g = set_a
    with torch.no_grad():
        out = model.sample(
            g["sampler_noise"],
            g["bert_dur"],
            g["ref_s"],
            num_steps=5,
            embedding_scale=1.0,
            step_noises=g["sampler_step_noises"],
        )
        out2 = model.sample(
            g["sampler2_noise"],
            g["bert_dur"],
            g["ref_s"],
            num_steps=4,
            embedding_scale=2.0,
            step_noises=list(g["sampler2_step_noises"]),
        )
    assert out.shape == (1, 1, 64)
    assert _max_diff(out, g["sampler_out"]) < 1e-5
    assert _max_diff(out2, g["sampler2_out"]) < 1e-5


def test_set_a_float64(set_a) -> None:
    model, g = set_a
    model64 = _copy_double(model)
    with torch.no_grad():
        args = (g["bert_dur"].double(), g["ref_s"].double())
        out = model64.sample(
            g["sampler_noise"].double(), *args, num_steps=5, step_noises=g["sampler_step_noises"].double()
        )
        out2 = model64.sample(
            g["sampler2_noise"].double(),
            *args,
            num_steps=4,
            embedding_scale=2.0,
            step_noises=g["sampler2_step_noises"].double(),
        )
        den = model64.denoise_fn(g["denoise_x"].double(), sigma=0.5, embedding=args[0], features=args[1])
    assert out.dtype == out2.dtype == den.dtype == torch.float64
    # the float32 golden values differ from exact arithmetic by float32 rounding only (~1e-6)
    assert _max_diff(out, g["sampler_out"]) < 1e-5
    assert _max_diff(out2, g["sampler2_out"]) < 1e-5
    assert _max_diff(den, g["denoise_out"]) < 1e-5


def _copy_double(model: StyleDiffusion) -> StyleDiffusion:
    copy = deepcopy(model)  # keeps the diffusion.net / unet aliasing
    assert copy.diffusion.net is copy.unet
    return copy.double().eval()


def test_seeded_sampling_draws_one_randn_like_per_step(set_a) -> None:
    model, g = set_a
    args = (g["bert_dur"], g["ref_s"])
    with torch.no_grad():
        torch.manual_seed(7)
        first = model.sample(g["sampler_noise"], *args, num_steps=5)
        torch.manual_seed(7)
        again = model.sample(g["sampler_noise"], *args, num_steps=5)
        torch.manual_seed(7)
        drawn = [torch.randn_like(g["sampler_noise"]) for _ in range(4)]
        explicit = model.sample(g["sampler_noise"], *args, num_steps=5, step_noises=drawn)
        different = model.sample(g["sampler_noise"], *args, num_steps=5, step_noises=drawn[::-1])
    assert torch.equal(first, again)
    assert torch.equal(first, explicit)
    assert _max_diff(first, different) > 1e-6
    with pytest.raises(ValueError, match="num_steps - 1"):
        model.sample(g["sampler_noise"], *args, num_steps=5, step_noises=drawn[:3])
    with pytest.raises(ValueError, match="reference styles"):
        model.sample(g["sampler_noise"], g["bert_dur"], g["ref_s"][:, :32], num_steps=5)
    with pytest.raises(ValueError, match=r"noise must be \[B, 1, 64\]"):
        model.sample(g["sampler_noise"][:, 0], *args, num_steps=5)


# --- golden set B ---------------------------------------------------------------------------------------


def test_set_b_aliased_keys_take_the_unet_values(set_b) -> None:
    """The fill gives diffusion.net.* and unet.* different values; loading copies unet.* last, as the
    official module does, and only that reproduces the golden outputs."""
    model, filled, g = set_b
    key = "to_out.1.weight"
    assert not torch.equal(filled["diffusion.net." + key], filled["unet." + key])
    assert torch.equal(model.unet.to_out[1].weight, filled["unet." + key])
    assert model.diffusion.net is model.unet

    other = deepcopy(model)
    other.load_state_dict(
        {k: (filled["diffusion.net." + k[5:]] if k.startswith("unet.") else v) for k, v in filled.items()}
    )
    with torch.no_grad():
        wrong = other.sample(
            g["sampler_noise"], g["bert_dur"], g["ref_s"], 5, step_noises=g["sampler_step_noises"]
        ).squeeze(1)
    assert _max_diff(wrong, g["sampler_out"]) > 1e-2


def test_set_b_sampler_replay(set_b) -> None:
    model, _, g = set_b
    with torch.no_grad():
        out = model.sample(
            g["sampler_noise"],
            g["bert_dur"],
            g["ref_s"],
            num_steps=5,
            embedding_scale=1.0,
            step_noises=g["sampler_step_noises"],
        ).squeeze(1)
        out2 = model.sample(
            g["sampler2_noise"],
            g["bert_dur"],
            g["ref_s"],
            num_steps=4,
            embedding_scale=2.0,
            step_noises=g["sampler2_step_noises"],
        ).squeeze(1)
    assert _max_diff(out, g["sampler_out"]) < 1e-4
    assert _max_diff(out2, g["sampler2_out"]) < 1e-4


def test_set_b_seeded_rng_matches_official_draws(set_b) -> None:
    """Set B's noises came from the global RNG (seed, then the initial noise, then one randn_like per
    step), so drawing them ourselves in the official order must reproduce the official outputs."""
    model, _, g = set_b
    cases = [
        ("sampler", g["sampler_args"]["num_steps"], g["sampler_args"]["embedding_scale"]),
        ("sampler2", g["sampler2_args"]["num_steps"], g["sampler2_args"]["embedding_scale"]),
    ]
    for name, steps, scale in cases:
        torch.manual_seed(g[f"{name}_args"]["rng_seed"])
        noise = torch.randn_like(g[f"{name}_noise"])
        assert torch.equal(noise, g[f"{name}_noise"])
        with torch.no_grad():
            out = model.sample(noise, g["bert_dur"], g["ref_s"], num_steps=steps, embedding_scale=scale)
        assert _max_diff(out.squeeze(1), g[f"{name}_out"]) < 1e-4, name


# --- training loss --------------------------------------------------------------------------------------


def _toy_model(seed: int = 0) -> StyleDiffusion:
    torch.manual_seed(seed)
    return build_diffusion(
        8,
        12,
        16,
        {"num_layers": 2, "num_heads": 2, "head_features": 4, "multiplier": 2},
        {"sigma_data": 0.2, "mean": -3.0, "std": 1.0},
        embedding_mask_proba=0.5,
    )


def _toy_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    styles = 0.2 * torch.randn(4, 16, generator=gen)
    embedding = torch.randn(4, 7, 12, generator=gen)
    features = torch.randn(4, 16, generator=gen)
    return styles, embedding, features


def test_loss_matches_the_edm_formula_and_rng_order() -> None:
    model = _toy_model()
    styles, embedding, features = _toy_batch()
    torch.manual_seed(3)
    loss = model.loss(styles, embedding, features, embedding_mask_proba=0.0)
    torch.manual_seed(3)
    sigmas = (-3.0 + 1.0 * torch.randn(4)).exp()
    noise = torch.randn_like(styles.unsqueeze(1))
    x = styles.unsqueeze(1)
    denoised = model.denoise_fn(
        x + sigmas.view(-1, 1, 1) * noise, sigmas=sigmas, embedding=embedding, features=features
    )
    weight = (sigmas**2 + 0.2**2) / (sigmas * 0.2) ** 2
    expected = (((denoised - x) ** 2).mean(dim=(1, 2)) * weight).mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)

    # masking every item means training on the fixed (unconditional) embedding
    fixed = model.unet.fixed_embedding(embedding)
    all_masked = model.loss(styles, embedding, features, noise=noise, sigmas=sigmas, embedding_mask_proba=1.0)
    uncond = model.loss(styles, fixed, features, noise=noise, sigmas=sigmas, embedding_mask_proba=0.0)
    assert torch.allclose(all_masked, uncond, rtol=1e-6, atol=0)
    assert not torch.allclose(all_masked, expected)


def test_loss_is_finite_differentiable_and_decreases() -> None:
    model = _toy_model().train()
    styles, embedding, features = _toy_batch()
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(4, 1, 16, generator=gen)
    sigmas = (-3.0 + torch.randn(4, generator=gen)).exp()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = model.loss(styles, embedding, features, noise=noise, sigmas=sigmas, embedding_mask_proba=0.0)
        assert torch.isfinite(loss) and loss.dim() == 0
        optimiser.zero_grad()
        loss.backward()
        # every weight but the fixed (unconditional) embedding is used when nothing is masked
        for name, p in model.named_parameters():
            if "fixed_embedding" not in name:
                assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    # with the config's masking the loss still backpropagates into the fixed embedding table
    model.zero_grad()
    torch.manual_seed(0)
    model.loss(styles, embedding, features, embedding_mask_proba=1.0).backward()
    assert model.unet.fixed_embedding.embedding.weight.grad.abs().sum() > 0
