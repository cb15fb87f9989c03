"""The voices of a voice-pack model as one module: the shipped packs, and new ones being learned.

Kokoro-82M has no style encoder: a voice *is* its pack. A new speaker is therefore a new pack, learned
by gradient descent through the frozen (or LoRA-adapted) networks. :class:`LearnedVoice` starts from a
stock pack (the one nearest the target) and learns either

* ``offset``: one 256-value shift added to every row, so the pack keeps the stock voice's per-length
  structure (row ``n-1`` for ``n`` tokens), or
* ``vector``: one 256-value style used for every text length (initialised at the stock pack's mean).

Stock packs are non-persistent buffers (they ship with the config, not in checkpoints); a learned
voice's parameter is in the state dict, so checkpoints, optimisers and resumption see it like any
other trainable tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .voice_packs import VoicePack, read_bundle

VOICE_MODES = ("offset", "vector")


class LearnedVoice(nn.Module):
    def __init__(self, init: VoicePack, mode: str = "offset") -> None:
        super().__init__()
        if mode not in VOICE_MODES:
            raise ValueError(f"voice mode must be one of {', '.join(VOICE_MODES)}, got {mode!r}")
        self.mode = mode
        self.init_name = init.name
        self.register_buffer("base", init.styles.clone(), persistent=False)
        width = init.width
        if mode == "offset":
            self.offset = nn.Parameter(torch.zeros(width))
        else:
            self.vector = nn.Parameter(init.styles.mean(0).clone())

    def rows(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, width]`` styles for texts of ``n_tokens`` phoneme tokens (differentiable)."""
        if self.mode == "vector":
            return self.vector.unsqueeze(0).expand(len(n_tokens), -1)
        index = (n_tokens.clamp(min=1, max=self.base.shape[0]) - 1).to(self.base.device)
        return self.base[index] + self.offset

    def pack(self, name: str) -> VoicePack:
        """The voice as a plain pack (every row), e.g. to save it in Kokoro's own format."""
        with torch.no_grad():
            rows = self.rows(torch.arange(1, self.base.shape[0] + 1, device=self.base.device))
        return VoicePack(rows.detach().cpu().float(), name)


class VoiceBank(nn.Module):
    """Stock packs by name plus learned voices (``learned``); lookups never mix the two up."""

    def __init__(self, packs: dict[str, VoicePack] | None = None) -> None:
        super().__init__()
        self._names: list[str] = []
        for name, pack in (packs or {}).items():
            self.add_pack(name, pack)
        self.learned = nn.ModuleDict()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> VoiceBank:
        return cls(read_bundle(Path(path)))

    @staticmethod
    def _buffer(name: str) -> str:
        return "pack__" + name

    def add_pack(self, name: str, pack: VoicePack) -> None:
        """A fixed pack (shipped, or a learned voice loaded back from an adapted model)."""
        self.register_buffer(self._buffer(name), pack.styles.clone(), persistent=False)
        if name not in self._names:
            self._names.append(name)

    def add_learned(self, name: str, init: VoicePack, mode: str = "offset") -> LearnedVoice:
        if name in self._names or name in self.learned:
            raise ValueError(f"a voice named {name!r} exists already; name the new voice differently")
        voice = LearnedVoice(init, mode).to(init.styles.device)
        self.learned[name] = voice
        return voice

    def names(self) -> list[str]:
        return [*self._names, *self.learned.keys()]

    def packs(self) -> dict[str, VoicePack]:
        out = {n: VoicePack(getattr(self, self._buffer(n)), n) for n in self._names}
        out.update({n: v.pack(n) for n, v in self.learned.items()})
        return out

    def styles(self, names: list[str], n_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, width]``: each utterance's voice row for its length; learned voices keep their graph."""
        rows = []
        for b, name in enumerate(names):
            n = n_tokens[b : b + 1]
            if name in self.learned:
                rows.append(self.learned[name].rows(n))
            elif name in self._names:
                pack = getattr(self, self._buffer(name))
                rows.append(pack[(n.clamp(min=1, max=pack.shape[0]) - 1).to(pack.device)])
            else:
                raise ValueError(f"no voice {name!r} in this model (voices: {', '.join(self.names())})")
        return torch.cat(rows)


def voice_for_speaker(speaker: str, names: list[str], mapping: dict[str, str] | None = None) -> str:
    """The voice a corpus speaker speaks with: ``mapping`` first, then the speaker's own name, then a
    corpus voiced by the model itself (``make-corpus --engine kokoro``: speaker ``kokoro-af-heart`` is
    voice ``af_heart``)."""
    if mapping and speaker in mapping:
        return mapping[speaker]
    if speaker in names:
        return speaker
    if speaker.startswith("kokoro-"):
        candidate = speaker[len("kokoro-") :].replace("-", "_")
        if candidate in names:
            return candidate
    raise ValueError(
        f"speaker {speaker!r} has no voice in this model (voices: {', '.join(names)}); a new speaker "
        "needs a learned voice (tts-adapt adapt learns one for its target)"
    )
