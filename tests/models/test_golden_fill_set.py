"""Golden set B: weights rebuilt by ``fill.py`` from our keys alone, saved officially, loaded, replayed."""

from __future__ import annotations

import torch

from tts_adapt.models.styletts2.config import load_config

TOL = 1e-4


def close(ours: torch.Tensor, ref: torch.Tensor, atol: float = TOL, rtol: float = 0.0) -> None:
    assert tuple(ours.shape) == tuple(ref.shape), f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    torch.testing.assert_close(ours.float(), ref.float(), atol=atol, rtol=rtol)


@torch.no_grad()
def test_fill_set_replay(model_b, golden_b, set_b):
    g, m = golden_b, model_b
    sd = load_config(set_b / "tiny_config.yml")["model_params"]["style_dim"]
    close(m.text_encoder(g["tokens"], g["input_lengths"], g["text_mask"]), g["t_en"])
    bert_dur = m.bert(g["tokens"], attention_mask=(~g["text_mask"]).int())
    close(bert_dur, g["bert_dur"])
    close(m.bert_encoder(g["bert_dur"]).transpose(-1, -2), g["d_en"])
    mel = g["ref_mel"].unsqueeze(1)
    close(m.style_encoder(mel), g["style_acoustic"])
    close(m.predictor_encoder(mel), g["style_prosodic"])
    s, ref = g["ref_s"][:, sd:], g["ref_s"][:, :sd]
    d = m.predictor.text_encoder(g["d_en"], s, g["input_lengths"], g["text_mask"])
    close(d, g["pred_text_encoder_out"])
    close(m.predictor.duration_proj(m.predictor.lstm(g["pred_text_encoder_out"])[0]), g["duration_logits"])
    F0, N = m.predictor.F0Ntrain(g["en"], s)
    close(F0, g["F0_pred"], rtol=1e-5)
    close(N, g["N_pred"])
    close(m.decoder(g["asr"], g["F0_pred"], g["N_pred"], ref, deterministic=True), g["decoder_wav"])
    close(
        m.sample_style(g["sampler_noise"], g["bert_dur"], g["ref_s"], 5, 1.0, g["sampler_step_noises"]),
        g["sampler_out"],
    )
    close(
        m.sample_style(g["sampler2_noise"], g["bert_dur"], g["ref_s"], 4, 2.0, g["sampler2_step_noises"]),
        g["sampler2_out"],
    )
    close(m.text_aligner(g["ref_mel"]), g["aligner_ctc_logits"])
    close(m.pitch_extractor(g["ref_mel"].unsqueeze(1))[0], g["pitch_f0"])


@torch.no_grad()
def test_fill_set_alignment_and_en(model_b, golden_b):
    g = golden_b
    assert torch.equal(g["alignment"].sum(-2), torch.ones_like(g["alignment"].sum(-2)))
    close(g["pred_text_encoder_out"].transpose(-1, -2) @ g["alignment"], g["en"], atol=1e-5)
    close(g["t_en"] @ g["alignment"], g["asr"], atol=1e-5)
