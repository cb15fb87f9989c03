"""The fine-tuning objective's pieces: alignment search, losses, and decomposition over utterances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tts_adapt.data import TTSDataset, collate
from tts_adapt.models.styletts2.alignment import monotonic_alignment
from tts_adapt.objective import FineTuneObjective, decoder_crop_frames
from tts_adapt.objective.spectral import MultiResolutionMelLoss


def brute_force_path(value: np.ndarray) -> float:
    """Best total over all monotonic paths (each token >= 1 frame, frames in order)."""
    tokens, frames = value.shape
    best = -np.inf
    for cuts in itertools.combinations(range(1, frames), tokens - 1):
        bounds = [0, *cuts, frames]
        total = sum(value[t, bounds[t] : bounds[t + 1]].sum() for t in range(tokens))
        best = max(best, total)
    return best


@pytest.mark.parametrize("tokens,frames", [(1, 4), (3, 5), (4, 9), (5, 5)])
def test_alignment_is_the_best_monotonic_path(tokens, frames):
    rng = np.random.default_rng(tokens * 10 + frames)
    value = rng.random((tokens, frames)).astype(np.float32)
    attn = torch.zeros(1, tokens + 2, frames + 3)
    attn[0, :tokens, :frames] = torch.from_numpy(value)
    path = monotonic_alignment(attn, torch.tensor([tokens]), torch.tensor([frames]))[0]
    assert path[tokens:].sum() == 0 and path[:, frames:].sum() == 0
    p = path[:tokens, :frames].numpy()
    assert (p.sum(0) == 1).all(), "each frame belongs to exactly one token"
    assert (p.sum(1) >= 1).all(), "each token gets at least one frame"
    owner = p.argmax(0)
    assert (np.diff(owner) >= 0).all() and (np.diff(owner) <= 1).all(), "monotonic, one token at a time"
    assert float((p * value).sum()) == pytest.approx(brute_force_path(value), rel=1e-6)


def test_too_few_frames_fall_back_to_a_proportional_alignment(caplog):
    path = monotonic_alignment(torch.rand(1, 4, 3), torch.tensor([4]), torch.tensor([3]))[0]
    assert (path.sum(0) == 1).all() and "proportional" in caplog.text


def test_mel_loss_is_per_utterance():
    loss = MultiResolutionMelLoss()
    torch.manual_seed(0)
    real = torch.randn(3, 1, 12000) * 0.1
    fake = real + 0.05 * torch.randn_like(real)
    both = loss(fake, real)
    assert both.shape == (3,)
    for b in range(3):
        torch.testing.assert_close(loss(fake[b : b + 1], real[b : b + 1])[0], both[b])
    assert float(loss(real, real).abs().max()) == 0.0
    assert float(loss(real + 0.2 * torch.randn_like(real), real).mean()) > float(both.mean())


def test_duration_terms_by_hand():
    logits = torch.tensor([[[2.0, -1.0, -3.0], [0.5, 0.5, -2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
    d_gt = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    ce, dur = FineTuneObjective._duration_terms(logits, d_gt, torch.tensor([3]))
    target = torch.tensor([[1.0, 0, 0], [1, 1, 0], [1, 1, 1]])
    expected_ce = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, :3], target)
    torch.testing.assert_close(ce[0], expected_ce)
    # only the middle token counts for L1 (start and end tokens are excluded)
    torch.testing.assert_close(dur[0], (torch.sigmoid(logits[0, 1]).sum() - 2.0).abs())


def test_objective_decomposes_over_utterances(micro_base, target_items):
    """Each utterance's terms are the same in a two-utterance batch and in a batch of its row alone (the
    padding kept, as when a global batch is split across processes)."""
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.train.distributed import DistInfo, shard

    path, config = micro_base
    model = load_official(path, config).eval()
    model.text_aligner.token_mask_prob = 0.0
    obj = FineTuneObjective(model, max_len=80, seed=3, estimate_sigma_data=False)
    ds = TTSDataset(target_items, seed=0)
    batch = collate([ds[0], ds[1]])
    crop = decoder_crop_frames(batch.mel_lengths, 80)
    with torch.no_grad():
        together = obj.generator_pass(batch, step=5, crop_frames=crop)
        obj.adversarial_terms(together)
        for b in range(len(batch)):
            alone = obj.generator_pass(shard(batch, DistInfo(b, len(batch))), step=5, crop_frames=crop)
            obj.adversarial_terms(alone)
            for name, value in together.terms.items():
                torch.testing.assert_close(alone.terms[name][0], value[b], rtol=2e-4, atol=2e-5, msg=name)
    assert set(together.terms) >= {"mel", "gen", "F0", "norm", "dur", "ce", "s2s", "mono", "sty", "diff"}


def test_reconstruction_from_ground_truth_prosody(micro_base, target_items):
    """The lazy reconstruction (the SLM discriminator's "real" on half its steps) is the decoder on
    ground-truth F0/energy: the crops' shape, no graph, repeatable, and not the predicted-F0 output."""
    from tts_adapt.models.styletts2 import load_official

    path, config = micro_base
    obj = FineTuneObjective(load_official(path, config).eval(), max_len=80, seed=3, estimate_sigma_data=False)
    batch = collate([TTSDataset(target_items, seed=0)[i] for i in range(2)])
    p = obj.generator_pass(batch, step=5, crop_frames=decoder_crop_frames(batch.mel_lengths, 80))
    rec = p.reconstruct()
    assert rec.shape == p.real.shape and not rec.requires_grad and p.generated.requires_grad
    torch.testing.assert_close(rec, p.reconstruct())
    assert not torch.allclose(rec, p.generated.detach(), atol=1e-3)


def test_too_short_batches_are_skipped(micro_base, target_items):
    from tts_adapt.models.styletts2 import load_official

    path, config = micro_base
    obj = FineTuneObjective(load_official(path, config).eval(), max_len=80)
    batch = collate([TTSDataset(target_items, seed=0)[0]])
    assert obj.generator_pass(batch, 0, crop_frames=30) is None


def test_style_sampler_draws_its_text_mask_at_every_denoiser_call(micro_base, target_items):
    """Official ``StyleTransformer1d.forward`` draws ``rand_bool((b, 1, 1), embedding_mask_proba)`` on
    every call, and the training-time sampler calls it twice per ADPM2 step: a trajectory's masks change
    from call to call. The loss's own call (one) has its own mask."""
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.models.styletts2.diffusion.sampler import ADPM2Sampler

    path, config = micro_base
    model = load_official(path, config).eval()
    model.text_aligner.token_mask_prob = 0.0
    obj = FineTuneObjective(model, max_len=80, seed=0, estimate_sigma_data=False, embedding_mask_proba=0.5)
    kdiff = model.diffusion.diffusion
    seen = []
    plain = kdiff.denoise_fn

    def recording(*args, **kwargs):
        seen.append(kwargs.get("embedding_mask"))
        return plain(*args, **kwargs)

    kdiff.denoise_fn = recording
    batch = collate([TTSDataset(target_items, seed=0)[i] for i in range(2)])
    with torch.no_grad():
        for step in range(4):
            seen.clear()
            p = obj.generator_pass(batch, step, acoustic=False)
            assert "sty" in p.terms
            calls = len(seen) - 1  # the last call is the EDM loss's
            assert calls in (ADPM2Sampler.calls(3), ADPM2Sampler.calls(4))
            masks = torch.stack([m.reshape(-1) for m in seen[:calls]])  # [calls, B]
            if any(len(set(masks[:, b].tolist())) > 1 for b in range(2)):
                break
        else:
            pytest.fail("every utterance kept one text mask over four trajectories at p = 0.5")


# -- the mel term against the official MultiResolutionSTFTLoss, float64 -----------------------------
# Official semantics (yl4579/StyleTTS2 losses.py at 5cedc71): ``stft_loss(y_rec, wav)`` with
# ``MultiResolutionSTFTLoss.forward(x, y)``, x the generated and y the ground-truth waveform; at each of
# (n_fft, hop, win) = (1024, 120, 600), (2048, 240, 1200), (512, 50, 240) a 24 kHz, 128-band HTK mel
# power spectrogram (torchaudio defaults: periodic Hann window, centred reflect padding, f_max = sr/2,
# no filterbank norm), normalised as (log(1e-5 + mel) + 4) / 4, then ``||Y - X||_1 / ||Y||_1``: the
# norm of the *ground truth* in the denominator; the mean over the resolutions. Its norms run over the
# batch; one utterance per batch makes that per utterance, which is how ours is defined.
OFFICIAL_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def htk_mel_filterbank(n_fft: int, n_mels: int = 128, sr: int = 24000) -> torch.Tensor:
    """``[n_fft // 2 + 1, n_mels]`` triangles, equally spaced on the HTK mel scale from 0 to sr / 2."""
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = 2595.0 * np.log10(1.0 + (sr / 2) / 700.0)
    mels = torch.linspace(0.0, top, n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    lower = (freqs[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])[None, :]
    upper = (edges[None, 2:] - freqs[:, None]) / (edges[2:] - edges[1:-1])[None, :]
    return torch.clamp(torch.minimum(lower, upper), min=0.0)


def official_mel_term(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per utterance (a batch of one each), float64, from the equations above."""
    out = []
    for x, y in zip(generated.reshape(len(generated), -1).double(), real.reshape(len(real), -1).double()):
        total = 0.0
        for n_fft, hop, win in OFFICIAL_RESOLUTIONS:
            window = torch.hann_window(win, periodic=True, dtype=torch.float64)
            fb = htk_mel_filterbank(n_fft)

            def logmel(w, n_fft=n_fft, hop=hop, win=win, window=window, fb=fb):
                spec = torch.stft(
                    w, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True
                )
                return (torch.log(1e-5 + fb.T @ spec.abs() ** 2) + 4) / 4

            xm, ym = logmel(x), logmel(y)
            total = total + (ym - xm).abs().sum() / ym.abs().sum()
        out.append(total / len(OFFICIAL_RESOLUTIONS))
    return torch.stack(out)


def fixed_waves() -> tuple[torch.Tensor, torch.Tensor]:
    """A voiced-like ground truth (harmonics of 140 and 210 Hz plus noise) and a distorted rendering."""
    g = torch.Generator().manual_seed(7)
    t = torch.arange(4800, dtype=torch.float64) / 24000
    real = torch.stack(
        [sum(0.3 / k * torch.sin(2 * np.pi * f0 * k * t) for k in range(1, 8)) for f0 in (140.0, 210.0)]
    )
    real = real + 0.01 * torch.randn(real.shape, generator=g, dtype=torch.float64)
    generated = 0.6 * real + 0.05 * torch.randn(real.shape, generator=g, dtype=torch.float64)
    return generated.unsqueeze(1), real.unsqueeze(1)


def test_mel_term_is_the_official_multi_resolution_loss_in_float64():
    generated, real = fixed_waves()
    expected = official_mel_term(generated, real)
    got = MultiResolutionMelLoss()(generated, real)
    assert got.dtype == torch.float64
    # 1e-6: torchaudio builds the filterbank and window in float32 before they are cast to float64
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0.0)
    # the ground truth's norm is the denominator: swapping the arguments is another loss
    swapped = official_mel_term(real, generated)
    assert ((swapped - expected).abs() > 0.05 * expected).all()


def test_the_objective_normalises_the_mel_term_by_the_ground_truth(micro_base, target_items):
    """The trainer's mel term on its own crops is the official loss of (generated, real): a call with
    the arguments swapped (normalised by the generated spectrum, which a model can inflate) differs."""
    from tts_adapt.models.styletts2 import load_official

    path, config = micro_base
    model = load_official(path, config).eval()
    model.text_aligner.token_mask_prob = 0.0
    obj = FineTuneObjective(model, max_len=80, seed=3, estimate_sigma_data=False)
    batch = collate([TTSDataset(target_items, seed=0)[i] for i in range(2)])
    with torch.no_grad():
        p = obj.generator_pass(batch, step=1, diffusion=False)
    expected = official_mel_term(p.generated, p.real)
    torch.testing.assert_close(p.terms["mel"].double(), expected, rtol=1e-4, atol=0.0)
    swapped = official_mel_term(p.real, p.generated)
    assert ((swapped - expected).abs() > 1e-2 * expected).all()
