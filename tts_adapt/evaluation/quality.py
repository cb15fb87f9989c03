"""Reference-free quality predictors: DNSMOS (offline, ONNX models in the ``speechmos`` wheel) and UTMOS.

DNSMOS P.835 gives ``sig`` (speech), ``bak`` (background), ``ovrl`` (overall) and the P.808 MOS; the
protocol reports ``ovrl`` as "DNSMOS". Clips shorter than 9 s are looped to 9 s by DNSMOS itself, so a
short clip costs as much as a 9 s one.

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
