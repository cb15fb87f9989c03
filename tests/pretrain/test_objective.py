"""The pre-training losses: aligner CTC/s2s and the first-stage reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tts_adapt.alignment.paths import align_batch, ctc_alignment_scores
from tts_adapt.alignment.table import AlignmentTable
from tts_adapt.data import TTSDataset, collate
from tts_adapt.models.styletts2 import build_model
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.objective.first_stage import AlignerObjective, FirstStageObjective, per_utterance_ctc


@pytest.fixture(scope="module")
def micro():
    torch.manual_seed(0)
    return build_model(MICRO_CONFIG).eval()  # no dropout: the paths are compared exactly


@pytest.fixture(scope="module")
def batch(prepared_synthetic):
    items = prepared_synthetic.items[:3]
    ds = TTSDataset(items, seed=0)
    return items, collate([ds[i] for i in range(3)])


def test_per_utterance_ctc_equals_one_utterance_at_a_time():
    """Batched per-utterance CTC must equal torch's CTC on each utterance alone (no padding leak)."""
    torch.manual_seed(0)
    logits = torch.randn(3, 20, 10)
    tokens = torch.tensor([[0, 3, 4, 5, 0, 0], [0, 7, 7, 2, 1, 0], [0, 9, 0, 0, 0, 0]])
    lengths = torch.tensor([5, 6, 3])
    mel_lengths = torch.tensor([40, 36, 22])
    got = per_utterance_ctc(logits, tokens, lengths, mel_lengths)
    for b in range(3):
        t = (int(mel_lengths[b]) + 1) // 2
        target = tokens[b, 1 : int(lengths[b]) - 1]
        logp = logits[b : b + 1, :t].log_softmax(-1).transpose(0, 1)
        ref = F.ctc_loss(logp, target[None], torch.tensor([t]), torch.tensor([len(target)]), reduction="sum")
        assert got[b].item() == pytest.approx(ref.item() / len(target), rel=1e-5)


def test_ctc_scores_are_token_posteriors():
    logits = torch.randn(2, 7, 5)
    tokens = torch.tensor([[0, 2, 4], [1, 1, 3]])
    scores = ctc_alignment_scores(logits, tokens)
    post = logits.softmax(-1)
    for b in range(2):
        for i in range(3):
            assert torch.allclose(scores[b, i], post[b, :, tokens[b, i]])


def test_aligner_terms_train_the_aligner(micro, batch):
    """A few steps on one batch must lower CTC + s2s (a loss wired to nothing would not move)."""
    _, b = batch
    model = build_model(MICRO_CONFIG)
    obj = AlignerObjective(model)
    opt = torch.optim.Adam(model.text_aligner.parameters(), lr=2e-3)
    model.text_aligner.train()
    first = None
    for _ in range(8):
        terms = obj.terms(b)
        loss = (terms["ctc"] + terms["s2s"]).mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.95 * first


def test_alignment_table_reproduces_the_monotonic_path(micro, batch):
    items, b = batch
    table = AlignmentTable.build(
        micro, items, batch_path := __import__("tempfile").mktemp(suffix=".st"), progress=False
    )
    hard = table(b)
    direct = align_batch(micro, b)
    # the table is built one length-sorted chunk at a time; the aligner sees the same frames per item
    for i in range(len(b)):
        n, f = int(b.token_lengths[i]), int(b.mel_lengths[i]) // 2
        assert hard[i, :n].sum(0)[:f].eq(1).all()  # every frame belongs to exactly one token
        assert (hard[i, :n].sum(-1) >= 1).all()  # every token gets a frame
        assert int(hard[i, :n].sum()) == f  # durations add up to the utterance's aligner frames
        assert direct[i, :n, :f].sum() == f  # the direct pass is a monotonic path over the same frames
    del batch_path


def test_first_stage_crops_never_run_past_the_wave(micro, batch):
    """Regression: ``mel frames × hop`` can exceed the samples of a shorter wave in the batch."""
    items, b = batch
    b.wave_lengths = b.wave_lengths.clone()
    b.wave_lengths[-1] -= 700  # a wave shorter than its mel frames claim
    obj = FirstStageObjective(micro, lambda uid, s, n: np.full(n, 120.0, np.float32), max_len=60)
    p = obj.generator_pass(b, step=0, tma=True)
    assert p.real.shape == p.generated.shape
    assert set(p.terms) == {"mel", "s2s", "mono"}
    assert torch.isfinite(obj.total(p)).all()


def test_first_stage_is_reproducible_and_per_utterance(micro, batch):
    """Same (seed, step, ids) gives the same loss; one utterance's loss does not depend on its batch."""
    items, b = batch
    f0 = lambda uid, s, n: np.full(n, 150.0, np.float32)  # noqa: E731
    micro.eval()
    obj = FirstStageObjective(micro, f0, max_len=60, seed=3)
    with torch.no_grad():
        a = obj.generator_pass(b, step=5, tma=False)
        c = obj.generator_pass(b, step=5, tma=False)
    assert torch.equal(a.terms["mel"], c.terms["mel"])
    with torch.no_grad():
        torch.manual_seed(99)  # the caller's RNG state must not matter, nor be consumed
        before = torch.random.get_rng_state()
        d = obj.generator_pass(b, step=5, tma=False)
        assert torch.equal(torch.random.get_rng_state(), before)
        e = obj.generator_pass(b, step=6, tma=False)
    assert torch.equal(a.terms["mel"], d.terms["mel"])
    assert not torch.equal(a.terms["mel"], e.terms["mel"])  # the step drives crops and noise
    assert "s2s" not in a.terms  # before TMA only the reconstruction trains


def test_adversarial_terms_without_tma_use_the_official_weights(micro, batch):
    """With MPD/MSD on and TMA off (the recogniser's paths kept), the generator loss must train the
    decoder at the official first-stage ratio: ``lambda_mel * mel + lambda_gen * gen`` as in
    ``train_first.py`` once the adversarial terms join; the bare mel loss while it trains alone."""
    _, b = batch
    f0 = lambda uid, s, n: np.full(n, 140.0, np.float32)  # noqa: E731
    obj = FirstStageObjective(micro, f0, max_len=60, seed=1)
    alone = obj.generator_pass(b, step=2, tma=False)
    assert torch.equal(obj.total(alone), alone.terms["mel"])
    p = obj.generator_pass(b, step=2, tma=False)
    obj.adversarial_terms(p)
    assert set(p.terms) == {"mel", "gen"}
    w = obj.weights
    expected = w.mel * p.terms["mel"] + w.gen * p.terms["gen"]
    assert torch.allclose(obj.total(p), expected)
    # the generator term really reaches the decoder: its gradient differs from the mel term's alone
    params = [q for q in micro.decoder.parameters() if q.requires_grad]
    g_total = torch.autograd.grad(obj.total(p).sum(), params, retain_graph=True, allow_unused=True)
    g_mel = torch.autograd.grad((w.mel * p.terms["mel"]).sum(), params, allow_unused=True)
    diff = sum(float((a - c).abs().sum()) for a, c in zip(g_total, g_mel) if a is not None and c is not None)
    assert diff > 0


def _style_inputs(model, run):
    seen = []
    hook = model.style_encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            run()
    finally:
        hook.remove()
    return seen[0][:, 0]  # [B, 80, frames]


def _is_window(piece: torch.Tensor, whole: torch.Tensor) -> bool:
    n = piece.shape[-1]
    return any(torch.equal(piece, whole[:, s : s + n]) for s in range(whole.shape[-1] - n + 1))


@pytest.mark.parametrize("source", ["segment", "reference"])
def test_first_stage_style_comes_from_the_chosen_source(micro, batch, source):
    """``segment`` (official train_first.py): the style encoder sees a window of the utterance being
    rebuilt; ``reference``: a window of the batch's style reference (another utterance of the voice),
    of one length for the whole batch and never reaching into its padding."""
    _, b = batch
    b = type(b)(**{**vars(b)})
    g = torch.Generator().manual_seed(1)
    b.ref_mels = torch.randn(b.ref_mels.shape, generator=g)  # unlike any window of the mels
    b.ref_mel_lengths = torch.tensor([150, 131, 190])[: len(b)]
    f0 = lambda uid, s, n: np.full(n, 150.0, np.float32)  # noqa: E731
    obj = FirstStageObjective(micro, f0, max_len=60, style_source=source)
    st = _style_inputs(micro, lambda: obj.generator_pass(b, step=2, tma=False))
    for i in range(len(b)):
        in_ref = _is_window(st[i], b.ref_mels[i, :, : int(b.ref_mel_lengths[i])])
        in_own = _is_window(st[i], b.mels[i, :, : int(b.mel_lengths[i])])
        assert (in_ref, in_own) == ((True, False) if source == "reference" else (False, True))
    if source == "reference":
        assert st.shape[-1] == 130  # the shortest reference, cut to an even number of frames


def test_first_stage_rejects_an_unknown_style_source(micro):
    with pytest.raises(ValueError, match="style_source"):
        FirstStageObjective(micro, lambda uid, s, n: None, style_source="speaker")


def test_log_stft_term_joins_only_when_weighted(micro, batch):
    """``lambda_stft`` 0 (the default) keeps the official terms; with a weight the term is the log-STFT
    loss of the same crops, and before TMA the total is the bare mel loss plus the term at its ratio
    to ``lambda_mel`` (as the mel loss is bare while alone), after TMA the weighted sum."""
    from tts_adapt.objective.first_stage import FirstStageWeights
    from tts_adapt.objective.spectral import MultiResolutionLogSTFTLoss

    items, b = batch
    f0 = lambda uid, s, n: np.full(n, 150.0, np.float32)  # noqa: E731
    weights = FirstStageWeights.from_config({"lambda_stft": 2.5})
    assert weights.stft == 2.5 and FirstStageWeights.from_config({}).stft == 0.0
    plain = FirstStageObjective(micro, f0, max_len=60, seed=3)
    obj = FirstStageObjective(micro, f0, weights=weights, max_len=60, seed=3)
    with torch.no_grad():
        assert set(plain.generator_pass(b, step=5, tma=False).terms) == {"mel"}
        p = obj.generator_pass(b, step=5, tma=False)
        want = MultiResolutionLogSTFTLoss()(p.generated, p.real)
        torch.testing.assert_close(p.terms["stft"], want)
        torch.testing.assert_close(obj.total(p), p.terms["mel"] + 0.5 * p.terms["stft"])
        q = obj.generator_pass(b, step=5, tma=True)
        want = 5 * q.terms["mel"] + 2.5 * q.terms["stft"] + q.terms["s2s"] + q.terms["mono"]
        torch.testing.assert_close(obj.total(q), want)
