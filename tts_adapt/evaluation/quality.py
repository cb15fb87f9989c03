"""Reference-free quality predictors: DNSMOS and Distill-MOS (offline, weights in their wheels) and UTMOS.

DNSMOS P.835 gives ``sig`` (speech), ``bak`` (background), ``ovrl`` (overall) and the P.808 MOS; the
protocol reports ``ovrl`` as "DNSMOS". Clips shorter than 9 s are looped to 9 s by DNSMOS itself, so a
short clip costs as much as a 9 s one.

Distill-MOS (``distillmos``, Microsoft, MIT) is a 4 M-parameter convolution + transformer student
distilled from an XLS-R speech-quality model; it predicts the overall listening-quality MOS (1..5) of
speech. Clips shorter than 7.68 s are zero-padded to it; longer ones are averaged over 7.68 s windows.

``MOS_PREDICTS`` says in one line what each was trained to predict; reports print it under the table.

UTMOS (``utmos22_strong``, SpeechMOS reimplementation) runs only when its code and weights are on disk:
a SpeechMOS checkout (folder with ``hubconf.py``) and ``utmos22_strong_step7459_v1.pt``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .audio_io import AudioInput, load_wave

DNSMOS_SAMPLE_RATE = 16000
UTMOS_WEIGHTS = "utmos22_strong_step7459_v1.pt"
MOS_BACKENDS = ("dnsmos", "distillmos")
MOS_PREDICTS = {
    "dnsmos": "DNSMOS P.835 (Microsoft): trained on human P.835 ratings of noisy and noise-suppressed "
    "speech; reported here is the overall quality (OVRL, 1..5), with speech (SIG) and background (BAK)",
    "distillmos": "Distill-MOS (Microsoft): distilled from an XLS-R model trained on human listening-quality "
    "MOS of degraded, coded and enhanced speech; predicts the overall quality MOS (1..5)",
}


class DNSMOS:
    """``score(audios) -> [{"ovrl", "sig", "bak", "p808"}]``; one ONNX session, loaded once."""

    name = "dnsmos"
    sample_rate = DNSMOS_SAMPLE_RATE

    def __init__(self, personalized: bool = False) -> None:
        try:
            import onnxruntime  # noqa: F401
            from speechmos import dnsmos
        except ImportError as e:
            raise RuntimeError(
                f"DNSMOS needs 'speechmos' and 'onnxruntime' (pip install speechmos onnxruntime): {e}"
            ) from e
        self._dnsmos = dnsmos
        self.model_type = "dnsmos_personalized" if personalized else "dnsmos"

    def score_waves(self, waves: Sequence[np.ndarray]) -> list[dict]:
        out = []
        for w in waves:
            w = np.clip(np.asarray(w, dtype=np.float32), -1.0, 1.0)
            if w.size < self.sample_rate // 10:
                raise ValueError("audio too short for DNSMOS (< 0.1 s)")
            r = self._dnsmos.run(w, self.sample_rate, model_type=self.model_type)
            out.append(
                {
                    "ovrl": float(r["ovrl_mos"]),
                    "sig": float(r["sig_mos"]),
                    "bak": float(r["bak_mos"]),
                    "p808": float(r["p808_mos"]),
                }
            )
        return out

    def score(self, audios: Sequence[AudioInput]) -> list[dict]:
        return self.score_waves([load_wave(a, self.sample_rate) for a in audios])


class DistillMOS:
    """``score(audios) -> [mos]``; the weights inside the ``distillmos`` wheel, read with
    ``weights_only=True`` (nothing is downloaded)."""

    name = "distillmos"
    sample_rate = 16000

    def __init__(self, device: str = "cpu") -> None:
        try:
            from distillmos.sqa import DEFAULT_WEIGHTS_CHKPT, ConvTransformerSQAModel
        except ImportError as e:
            raise RuntimeError(f"Distill-MOS needs 'distillmos' (pip install 'tts-adapt[eval]'): {e}") from e
        from ..utils.io import safe_torch_load

        model = ConvTransformerSQAModel(load_weights=False)
        state = safe_torch_load(DEFAULT_WEIGHTS_CHKPT)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{DEFAULT_WEIGHTS_CHKPT}: expected a checkpoint with a 'model' state dict")
        model.load_state_dict(state["model"])
        self.model = model.eval().to(device)
        self.device = device

    def score_waves(self, waves: Sequence[np.ndarray]) -> list[float]:
        import torch

        out = []
        for w in waves:
            w = np.clip(np.asarray(w, dtype=np.float32), -1.0, 1.0)
            if w.size < self.sample_rate // 10:
                raise ValueError("audio too short for Distill-MOS (< 0.1 s)")
            x = torch.from_numpy(w).unsqueeze(0).to(self.device)
            with torch.inference_mode():
                out.append(float(self.model(x).reshape(-1)[0]))
        return out

    def score(self, audios: Sequence[AudioInput]) -> list[float]:
        return self.score_waves([load_wave(a, self.sample_rate) for a in audios])


def _torch_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir())


class UTMOS:
    """UTMOS strong learner; ``repo`` is a SpeechMOS checkout, ``weights`` the state-dict file."""

    name = "utmos"
    sample_rate = 16000

    def __init__(
        self,
        repo: str | os.PathLike | None = None,
        weights: str | os.PathLike | None = None,
        device: str = "cpu",
    ) -> None:
        import torch

        from ..utils.io import safe_torch_load

        hub = _torch_hub_dir()
        if repo is None:
            found = sorted(hub.glob("tarepan_SpeechMOS_*"))
            repo = found[-1] if found else None
        if repo is None or not (Path(repo) / "hubconf.py").is_file():
            raise FileNotFoundError(
                f"UTMOS code not found: pass --utmos-repo to a checkout of tarepan/SpeechMOS (a folder with "
                f"hubconf.py), or have torch.hub cache it under {hub}; got {repo!r}"
            )
        weights = Path(weights) if weights else hub / "checkpoints" / UTMOS_WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"UTMOS weights not found: {weights} (the {UTMOS_WEIGHTS} release file)")
        model = torch.hub.load(str(repo), "utmos22_strong", source="local", pretrained=False, trust_repo=True)
        model.load_state_dict(safe_torch_load(weights))
        self.model = model.eval().to(device)
        self.device = device

    def score(self, audios: Sequence[AudioInput]) -> list[float]:
        import torch

        out = []
        for a in audios:
            w = torch.from_numpy(load_wave(a, self.sample_rate)).unsqueeze(0).to(self.device)
            with torch.inference_mode():
                out.append(float(self.model(w, self.sample_rate).reshape(-1)[0]))
        return out
