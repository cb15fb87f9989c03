"""Golden set A: the official-format checkpoint replayed call by call against the official outputs."""

from __future__ import annotations

import pytest
import torch

from tts_adapt.models.styletts2 import load_official
from tts_adapt.models.styletts2.inference import infer_tokens

from .conftest import official_format

TOL = 1e-5


def close(ours: torch.Tensor, ref: torch.Tensor, atol: float = TOL, rtol: float = 0.0) -> None:
    assert tuple(ours.shape) == tuple(ref.shape), f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    torch.testing.assert_close(ours.float(), ref.float(), atol=atol, rtol=rtol)


@torch.no_grad()
def test_text_bert_and_style(model_a, golden_a):
    g, m = golden_a, model_a
    close(m.text_encoder(g["tokens"], g["input_lengths"], g["text_mask"]), g["t_en"])
    close(m.bert(g["tokens"], attention_mask=(~g["text_mask"]).int()), g["bert_dur"])
    close(m.bert_encoder(g["bert_dur"]).transpose(-1, -2), g["d_en"])
    mel = g["ref_mel"].unsqueeze(1)
    close(m.style_encoder(mel), g["style_acoustic"])
    close(m.predictor_encoder(mel), g["style_prosodic"])
    close(m.compute_style(g["ref_mel"]), g["ref_s"])


@torch.no_grad()
def test_predictor(model_a, golden_a):
    g, m = golden_a, model_a
    d = m.predictor.text_encoder(g["d_en"], g["s"], g["input_lengths"], g["text_mask"])
    close(d, g["predictor_text_encoder_out"])
    close(m.predictor.lstm(g["predictor_text_encoder_out"])[0], g["predictor_lstm_out"])
    close(m.predictor.duration_proj(g["predictor_lstm_out"]), g["duration_logits"])
    F0, N = m.predictor.F0Ntrain(g["en"], g["s"])
    close(F0, g["F0_pred"], atol=1e-4, rtol=1e-5)
    close(N, g["N_pred"])


@torch.no_grad()
def test_decoder_float32(model_a, golden_a):
    g, m = golden_a, model_a
    close(
        m.decoder(g["asr"], g["F0_pred"], g["N_pred"], g["ref"], deterministic=True),
        g["decoder_wav"],
        atol=3e-2,
    )
    close(
        m.decoder(g["asr"], g["synth_F0"], g["N_pred"], g["ref"], deterministic=True),
        g["decoder_synth_wav"],
        atol=3e-2,
    )
    f0 = torch.repeat_interleave(g["synth_F0"].unsqueeze(1), m.decoder.generator.hop, dim=-1).transpose(1, 2)
    harmonic, _, _ = m.decoder.generator.m_source(f0, deterministic=True)
    close(harmonic, g["decoder_synth_har_source"], atol=1e-4)


@pytest.mark.slow
@torch.no_grad()
def test_decoder_float64_is_sharp(model_a, golden_a):
    """In float64 the decoder must reproduce the official float64 waveforms to 1e-5."""
    g = golden_a
    dec = model_a.decoder.double()
    try:
        wav = dec(
            g["asr"].double(),
            g["F0_pred"].double(),
            g["N_pred"].double(),
            g["ref"].double(),
            deterministic=True,
        )
        close(wav, g["decoder_wav_f64ref"])
        wav = dec(
            g["asr"].double(),
            g["synth_F0"].double(),
            g["N_pred"].double(),
            g["ref"].double(),
            deterministic=True,
        )
        close(wav, g["decoder_synth_wav_f64ref"])
    finally:
        dec.float()


@pytest.mark.slow
def test_decoder_default_is_stochastic(model_a, golden_a):
    g, m = golden_a, model_a
    with torch.no_grad():
        torch.manual_seed(0)
        a = m.decoder(g["asr"], g["F0_pred"], g["N_pred"], g["ref"])
        b = m.decoder(g["asr"], g["F0_pred"], g["N_pred"], g["ref"])
        c = m.decoder(g["asr"], g["F0_pred"], g["N_pred"], g["ref"], deterministic=True)
        d = m.decoder(g["asr"], g["F0_pred"], g["N_pred"], g["ref"], deterministic=True)
    assert (a - b).abs().max() > 1e-4
    assert torch.equal(c, d)


@torch.no_grad()
def test_sampler(model_a, golden_a):
    g, m = golden_a, model_a
    out = m.sample_style(g["sampler_noise"], g["bert_dur"], g["ref_s"], 5, 1.0, g["sampler_step_noises"])
    close(out, g["sampler_out"].squeeze(1))
    out2 = m.sample_style(
        g["sampler2_noise"],
        g["bert_dur"],
        g["ref_s"],
        int(g["sampler2_num_steps"]),
        float(g["sampler2_embedding_scale"]),
        g["sampler2_step_noises"],
    )
    close(out2, g["sampler2_out"].squeeze(1))


@torch.no_grad()
def test_aligner_and_pitch(model_a, golden_a):
    g, m = golden_a, model_a
    close(m.text_aligner(g["aligner_mel"]), g["aligner_ctc_logits"], atol=1e-4)
    close(m.pitch_extractor(g["ref_mel"].unsqueeze(1))[0], g["pitch_f0"], atol=1e-4)


@torch.no_grad()
def test_padded_batch(model_a, golden_a):
    g, m = golden_a, model_a
    tok, lens, mask = g["batch_tokens"], g["batch_input_lengths"], g["batch_text_mask"]
    close(m.text_encoder(tok, lens, mask), g["batch_t_en"])
    close(m.bert(tok, attention_mask=(~mask).int()), g["batch_bert_dur"])
    close(m.bert_encoder(g["batch_bert_dur"]).transpose(-1, -2), g["batch_d_en"])
    out = m.predictor.text_encoder(g["batch_d_en"], g["batch_style"], lens, mask)
    close(out, g["batch_predictor_text_encoder_out"])


@torch.no_grad()
def test_notebook_end_to_end(model_a, golden_a):
    g = golden_a
    r = infer_tokens(
        model_a,
        g["tokens"],
        g["ref_s"],
        g["e2e_alpha"],
        g["e2e_beta"],
        5,
        1.0,
        noise=g["sampler_noise"],
        step_noises=g["sampler_step_noises"],
        deterministic=True,
    )
    close(r.s_pred, g["e2e_s_pred"])
    close(r.s, g["e2e_s"])
    close(r.ref, g["e2e_ref"])
    close(r.durations, g["e2e_duration_sum"])
    assert torch.equal(r.pred_dur.float(), g["e2e_pred_dur"].float())
    close(r.F0, g["e2e_F0_pred"], atol=1e-3, rtol=1e-5)
    close(r.N, g["e2e_N_pred"])
    close(r.wave, g["e2e_wav"], atol=5e-2)


def test_prefixed_checkpoint_loads_identically(set_a, model_a, golden_a, tmp_path):
    """The real checkpoint carries ``module.`` on every module but mpd/msd/wd: same weights, same outputs."""
    raw = torch.load(set_a / "tiny_epochs_2nd.pth", weights_only=True)
    path = tmp_path / "prefixed.pth"
    torch.save(official_format(raw["net"], prefixed=True), path)
    assert next(iter(torch.load(path, weights_only=True)["net"]["decoder"])).startswith("module.")
    prefixed = load_official(path, set_a / "tiny_config.yml")
    ours, theirs = model_a.state_dict(), prefixed.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with torch.no_grad():
        close(
            prefixed.text_encoder(golden_a["tokens"], golden_a["input_lengths"], golden_a["text_mask"]),
            golden_a["t_en"],
        )
