"""The official StyleTTS 2 inference, run from the official repository's own modules (imported from
``--official PATH``; nothing is copied here), on the weights of one of our models.

The steps are those of the official LibriTTS inference notebook, expressed with the official modules:
text encoder, PL-BERT (``CustomAlbert``), the official ``DiffusionSampler`` with ``ADPM2Sampler`` and the
Karras schedule, the prosody predictor and the decoder. The official repository's modules need ``munch``,
``einops``, ``einops_exts`` and ``transformers``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import torch

from tts_adapt.models.styletts2.checkpoint import official_state
from tts_adapt.models.styletts2.config import asr_params, jdc_params, plbert_params
from tts_adapt.models.styletts2.model import StyleTTS2


def import_official(path: str | os.PathLike) -> str:
    """Put the official repository on ``sys.path`` (once) and return its path."""
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "models.py")):
        raise FileNotFoundError(f"{path} is not the official StyleTTS 2 repository (no models.py)")
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def official_networks(path: str | os.PathLike, ours: StyleTTS2) -> Any:
    """The official networks (``models.build_model``, a Munch of modules) holding the weights of ``ours``."""
    import_official(path)
    import models  # the official repository's modules
    from munch import munchify
    from transformers import AlbertConfig
    from Utils.ASR.models import ASRCNN
    from Utils.JDC.model import JDCNet
    from Utils.PLBERT.util import CustomAlbert

    cfg = ours.config
    plbert = CustomAlbert(AlbertConfig(**plbert_params(cfg)))
    aligner = ASRCNN(**asr_params(cfg))
    jdc = jdc_params(cfg)
    pitch = JDCNet(num_class=jdc.get("num_class", 1), seq_len=jdc.get("seq_len", 192))
    nets = models.build_model(munchify(cfg["model_params"]), aligner, pitch, plbert)
    state = official_state(ours)["net"]
    for name, net in nets.items():
        weights = {k.removeprefix("module."): v for k, v in state[name].items()}
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"the official {name!r} cannot hold this model's weights (the official decoder and "
                f"discriminators have fixed widths; compare with --config libritts): {str(err)[:300]}"
            ) from None
    return nets


class OfficialModel:
    """The official networks holding the weights of ``ours``, with the notebook's sampler."""

    def __init__(self, path: str | os.PathLike, ours: StyleTTS2) -> None:
        self.nets = official_networks(path, ours)
        for net in self.nets.values():
            net.eval()
        from Modules.diffusion.sampler import ADPM2Sampler, DiffusionSampler, KarrasSchedule

        self.nets.diffusion.diffusion.sigma_data = ours.diffusion.sigma_data
        self.sampler = DiffusionSampler(
            self.nets.diffusion.diffusion,
            sampler=ADPM2Sampler(),
            sigma_schedule=KarrasSchedule(sigma_min=0.0001, sigma_max=3.0, rho=9.0),
            clamp=False,
        )
        self.style_dim = ours.style_dim
        self.hifigan = ours.decoder_type == "hifigan"

    @torch.no_grad()
    def infer(
        self,
        tokens: torch.Tensor,
        ref_s: torch.Tensor,
        alpha: float = 0.3,
        beta: float = 0.7,
        steps: int = 5,
        timings: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """The notebook's ``inference`` for ids ``[1, T]``; random draws from torch's global RNG."""
        m, sd = self.nets, self.style_dim
        clock = _Clock(timings)
        lengths = torch.LongTensor([tokens.shape[-1]])
        mask = torch.arange(tokens.shape[-1]).unsqueeze(0) + 1 > lengths.unsqueeze(1)
        t_en = m.text_encoder(tokens, lengths, mask)
        clock("text_encoder")
        bert_dur = m.bert(tokens, attention_mask=(~mask).int())
        d_en = m.bert_encoder(bert_dur).transpose(-1, -2)
        clock("bert")
        noise = torch.randn((1, 2 * sd)).unsqueeze(1)
        s_pred = self.sampler(
            noise=noise, embedding=bert_dur, embedding_scale=1, features=ref_s, num_steps=steps
        ).squeeze(1)
        clock("diffusion_sampler")
        ref = alpha * s_pred[:, :sd] + (1 - alpha) * ref_s[:, :sd]
        s = beta * s_pred[:, sd:] + (1 - beta) * ref_s[:, sd:]
        d = m.predictor.text_encoder(d_en, s, lengths, mask)
        x, _ = m.predictor.lstm(d)
        duration = torch.sigmoid(m.predictor.duration_proj(x)).sum(dim=-1)
        pred_dur = torch.round(duration.squeeze()).clamp(min=1)
        aln = torch.zeros(tokens.shape[-1], int(pred_dur.sum().data))
        frame = 0
        for i in range(aln.size(0)):
            aln[i, frame : frame + int(pred_dur[i].data)] = 1
            frame += int(pred_dur[i].data)
        en = d.transpose(-1, -2) @ aln.unsqueeze(0)
        asr = t_en @ aln.unsqueeze(0)
        if self.hifigan:
            en = torch.cat([en[:, :, :1], en[:, :, :-1]], dim=2)
            asr = torch.cat([asr[:, :, :1], asr[:, :, :-1]], dim=2)
        F0, N = m.predictor.F0Ntrain(en, s)
        clock("predictor")
        out = m.decoder(asr, F0, N, ref.squeeze().unsqueeze(0))
        clock("decoder")
        return out.squeeze()[..., :-50]


class _Clock:
    """Adds the time since the previous call to ``timings[name]``."""

    def __init__(self, timings: dict[str, Any] | None) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now
