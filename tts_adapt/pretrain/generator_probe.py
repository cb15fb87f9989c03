"""Generator probe: can a decoder's waveform generator learn to follow its F0, alone, under the mel loss?

The pitch-following diagnostic (:mod:`tts_adapt.evaluation.pitch_following`) found every model we
pre-trained speaking at the 80 Hz frame rate whatever F0 it was given. This probe takes the question out
of the full model: it trains only the generator of a config's decoder (``decoder.generator``, harmonic
source included) with the first stage's multi-resolution mel loss, on one of two tasks:

* ``tones``: the input features are one learned constant vector per channel and the target is a
  harmonic tone whose pitch is exactly the F0 curve given (a glide between two random pitches in
  80-250 Hz), so the source is the only thing that can carry the pitch;
* ``corpus``: a vocoder on corpus crops: the input is a learned convolution of the crop's log-mel, the
  F0 is the pre-training tracker's (``yin`` or ``pyin``) on the same crop, and the target is the crop.

Every ``--every`` steps it measures the output pitch (pYIN): for ``tones``, generating at F0 = 100, 150
and 200 Hz; for ``corpus``, re-generating four fixed crops with their F0 × 0.5, 1 and 2. The slope of log
output pitch on log factor is 1 when the generator follows and 0 when it ignores its F0. The trained
generator is saved as safetensors (``--save``); ``--init`` starts from such a file, so a generator
trained on tones can be tried as a vocoder, or dropped into a full model (keys of ``decoder.generator``).
``--lambda-gen`` adds the official adversarial terms (the config's MPD and MSD, trained beside it), to ask
whether they keep a generator following where the mel loss alone does not.

    python -m tts_adapt.pretrain.generator_probe --task tones --steps 600 --save tones.safetensors
    python -m tts_adapt.pretrain.generator_probe --task corpus --data CORPUS --init tones.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..utils.help import HelpFormatter

HOP = 300
SAMPLE_RATE = 24000
TONE_PITCHES = (100.0, 150.0, 200.0)
CORPUS_SCALES = (0.5, 1.0, 2.0)


def harmonic_tone(
    f0: np.ndarray, rng: np.random.Generator, hop: int = HOP, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """A tone whose pitch is the frame-rate F0 curve ``f0 [B, T]``: harmonics with 1/k amplitudes up to
    4 kHz, a random starting phase per row, ``[B, T * hop]``."""
    per_sample = np.repeat(np.asarray(f0, dtype=np.float64), hop, axis=1)
    phase = 2 * np.pi * np.cumsum(per_sample / sr, axis=1) + rng.uniform(0, 2 * np.pi, (len(per_sample), 1))
    out = np.zeros_like(per_sample)
    for k in range(1, 40):
        out += np.where(k * per_sample < 4000.0, np.sin(k * phase) / k, 0.0)
    return (0.15 * out).astype(np.float32)


def interpolating_upsamplers(generator: nn.Module, seed: int = 0) -> int:
    """Make the generator's transposed-convolution upsamplers fixed linear interpolators (a random channel
    mixing times a triangular kernel whose taps sum to one at every output phase) and freeze them: frame-rate
    features then upsample without any pattern that repeats every frame. Returns how many were replaced."""
    gen = torch.Generator().manual_seed(seed)
    replaced = 0
    for up in generator.ups:
        cin, cout, k = up.weight_v.shape
        u = up.stride[0]
        if k != 2 * u:
            raise ValueError(f"interpolating upsamplers need kernel = 2 x stride, got kernel {k}, stride {u}")
        j = torch.arange(k, dtype=torch.float32)
        tri = torch.where(j < u, (j + 0.5) / u, (2 * u - j - 0.5) / u)
        with torch.no_grad():
            weight = torch.randn(cin, cout, 1, generator=gen) / math.sqrt(cin) * tri
            up.weight_v.copy_(weight)
            up.weight_g.copy_(weight.norm(dim=(1, 2), keepdim=True))
        up.requires_grad_(False)
        replaced += 1
    return replaced


class GeneratorProbe(nn.Module):
    """The config's decoder generator plus the input it is fed on the probe's task."""

    def __init__(self, generator: nn.Module, style_dim: int, channels: int, task: str, seed: int = 0) -> None:
        super().__init__()
        if task not in ("tones", "corpus"):
            raise ValueError(f"task must be 'tones' or 'corpus', got {task!r}")
        gen = torch.Generator().manual_seed(seed)
        self.generator = generator
        self.task = task
        self.constant = nn.Parameter(torch.randn(1, channels, 1, generator=gen) * 0.1)
        self.from_mel = nn.Conv1d(80, channels, 3, padding=1)
        self.register_buffer("style", torch.randn(1, style_dim, generator=gen))

    def forward(self, f0: torch.Tensor, wave: torch.Tensor | None = None) -> torch.Tensor:
        """``f0 [B, T]`` Hz (and the target crops ``[B, T * 300]`` for ``corpus``) -> ``[B, T * 300]``."""
        from ..audio import log_mel

        if self.task == "corpus":
            x = self.from_mel(log_mel(wave)[..., : f0.shape[1]])
        else:
            x = self.constant.expand(f0.shape[0], -1, f0.shape[1])
        style = self.style.expand(f0.shape[0], -1)
        return self.generator(x, style, f0, deterministic=not self.training).reshape(f0.shape[0], -1)


def build_generator(config: str) -> tuple[nn.Module, int, int]:
    """The decoder generator of a model config (``base-istftnet``, ``base``, ``micro``, ``libritts`` or a
    config.yml), freshly initialised as the model builds it, with its style width and input channels."""
    generator, style_dim, channels, _ = build_parts(config)
    return generator, style_dim, channels


def build_parts(config: str) -> tuple[nn.Module, int, int, nn.ModuleDict]:
    """:func:`build_generator` plus the config's waveform discriminators (``mpd``, ``msd``), at the widths
    the config gives them, for ``--lambda-gen``."""
    from ..models.styletts2 import build_model
    from ..models.styletts2.config import load_config, named_config

    path = named_config(config)
    params = load_config(path)["model_params"]
    model = build_model(path)
    return (
        model.decoder.generator,
        params["style_dim"],
        params["decoder"]["upsample_initial_channel"],
        nn.ModuleDict({"mpd": model.mpd, "msd": model.msd}),
    )


class CorpusCrops:
    """Random fixed-length crops of corpus recordings with their F0 (the pre-training tracker's)."""

    def __init__(
        self,
        files: Sequence[Path],
        tracker: str,
        frames: int,
        rng: np.random.Generator,
        min_pitch: float = 0.0,
    ) -> None:
        import soundfile as sf

        from ..objective.pitch import track_f0

        self.frames, self.rng, self.items = frames, rng, []
        for f in files:
            wave, sr = sf.read(str(f), dtype="float32", always_2d=False)
            if sr != SAMPLE_RATE:
                raise ValueError(f"{f}: expected {SAMPLE_RATE} Hz audio (a make-corpus corpus), got {sr} Hz")
            f0 = track_f0(wave, SAMPLE_RATE, tracker)
            voiced = f0[f0 > 0]
            if min_pitch and (not len(voiced) or np.median(voiced) < min_pitch):
                continue
            if len(f0) > frames + 1 and len(wave) >= (len(f0) - 1) * HOP:
                self.items.append((wave, f0))
        if len(self.items) < 4:
            raise ValueError(
                f"fewer than 4 recordings longer than {frames} frames"
                + (f" with a median pitch of at least {min_pitch:g} Hz" if min_pitch else "")
                + f" among {len(files)} files"
            )

    def crop(self, index: int, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        wave, f0 = self.items[index]
        return f0[start : start + frames], wave[start * HOP : (start + frames) * HOP]

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        f0s, waves = [], []
        while len(waves) < size:
            i = int(self.rng.integers(len(self.items)))
            _, f0 = self.items[i]
            start = int(self.rng.integers(0, len(f0) - self.frames - 1))
            f, w = self.crop(i, start, self.frames)
            if len(w) == self.frames * HOP:
                f0s.append(f)
                waves.append(w)
        return torch.from_numpy(np.stack(f0s)), torch.from_numpy(np.stack(waves))

    def probes(self, count: int = 4, frames: int = 80) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed crops (mostly voiced, from the start of recordings) for the following measurement."""
        out = []
        for i in np.random.default_rng(123).permutation(len(self.items)):
            wave, f0 = self.items[i]
            if len(f0) > frames and (f0[:frames] > 0).mean() >= 0.5 and len(wave) >= frames * HOP:
                f, w = self.crop(int(i), 0, frames)
                out.append((torch.from_numpy(f)[None], torch.from_numpy(w)[None]))
            if len(out) == count:
                break
        return out


def measure(probe: GeneratorProbe, probes=None) -> dict:
    """Output pitch per probe and the mean slope over probes (see the module docstring)."""
    from ..evaluation.pitch_following import median_pitch, slope

    probe.eval()
    with torch.no_grad():
        if probe.task == "tones":
            pitches = [median_pitch(probe(torch.full((1, 80), hz)).numpy()[0]) for hz in TONE_PITCHES]
            result = {
                "given": list(TONE_PITCHES),
                "output": pitches,
                "slope": slope(TONE_PITCHES, pitches),
            }
        else:
            rows, slopes = [], []
            for f0, wave in probes:
                row = [median_pitch(probe(f0 * k, wave).numpy()[0]) for k in CORPUS_SCALES]
                rows.append(row)
                slopes.append(slope(CORPUS_SCALES, row))
            finite = [s for s in slopes if math.isfinite(s)]
            result = {
                "given": [float(np.median(f[f > 0])) for f, _ in probes],
                "output": rows,
                "slope": float(np.mean(finite)) if finite else math.nan,
            }
    probe.train()
    return result


def adversarial_step(
    discriminators: nn.ModuleDict,
    disc_optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    mel_loss: torch.Tensor,
    lambda_gen: float,
) -> torch.Tensor:
    """One discriminator update on ``real`` against the detached ``fake`` (official order: discriminator
    first), then the generator's loss ``5 mel + lambda_gen gen`` (the official first stage's weights) to
    back-propagate; the discriminators get no gradient from it."""
    from ..objective.adversarial import mpd_msd_discriminator_loss, mpd_msd_generator_loss

    mpd, msd = discriminators["mpd"], discriminators["msd"]
    real, fake = real.unsqueeze(1), fake.unsqueeze(1)
    d_loss = mpd_msd_discriminator_loss(mpd, msd, real, fake)
    disc_optimizer.zero_grad()
    d_loss.backward()
    disc_optimizer.step()
    discriminators.requires_grad_(False)
    try:
        gen = mpd_msd_generator_loss(mpd, msd, real, fake)
    finally:
        discriminators.requires_grad_(True)
    return 5.0 * mel_loss + lambda_gen * gen


def main(argv: Sequence[str] | None = None) -> int:
    from ..objective.spectral import MultiResolutionMelLoss
    from ..utils.io import load_tensors, save_tensors

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument(
        "--config",
        default="base-istftnet",
        help="config.yml, or base-istftnet (the shipped model's architecture with its earlier iSTFTNet "
        "decoder, where the buzz was found), base, micro, libritts",
    )
    p.add_argument("--task", choices=("tones", "corpus"), default="tones", help="what the generator learns")
    p.add_argument("--data", help="corpus folder for --task corpus (its .wav files, 24 kHz)")
    p.add_argument("--files", type=int, default=300, help="recordings drawn from --data")
    p.add_argument("--f0", choices=("yin", "pyin"), default="yin", help="F0 tracker for --task corpus")
    p.add_argument(
        "--min-pitch", type=float, default=0.0, help="only recordings whose median F0 is this high (Hz)"
    )
    p.add_argument(
        "--interpolating-upsamplers",
        action="store_true",
        help="fixed linear-interpolation upsamplers instead of trained transposed convolutions",
    )
    p.add_argument(
        "--lambda-gen",
        type=float,
        default=0.0,
        help="weight of the official adversarial generator loss (MPD + MSD, feature matching) beside "
        "5 x the mel loss, as in the official first stage; 0 trains on the mel loss alone",
    )
    p.add_argument("--steps", type=int, default=600, help="training steps")
    p.add_argument("--every", type=int, default=150, help="measure the pitch following every N steps")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step")
    p.add_argument("--frames", type=int, default=40, help="crop length in 300-sample frames")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate")
    p.add_argument("--init", help="generator weights to start from (a --save file)")
    p.add_argument("--save", help="write the trained generator here (safetensors)")
    p.add_argument("--log", help="append each measurement here as a JSON line")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches and phases")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.every < 1 or args.steps < 1:
        p.error("--steps and --every must be at least 1")
    if args.task == "corpus" and not args.data:
        p.error("--task corpus needs --data (a corpus folder)")
    if args.lambda_gen < 0:
        p.error("--lambda-gen must be at least 0")
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)  # not a failure at the first measurement
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    generator, style_dim, channels, discriminators = build_parts(args.config)
    if args.init:
        weights, _ = load_tensors(args.init)
        generator.load_state_dict(weights)
    if args.interpolating_upsamplers:
        interpolating_upsamplers(generator, args.seed)
    probe = GeneratorProbe(generator, style_dim, channels, args.task, args.seed)
    crops = probes = None
    if args.task == "corpus":
        files = sorted(Path(args.data).rglob("*.wav"))
        files = [files[i] for i in rng.permutation(len(files))[: args.files]]
        crops = CorpusCrops(files, args.f0, args.frames, rng, args.min_pitch)
        probes = crops.probes()
    loss_fn = MultiResolutionMelLoss(SAMPLE_RATE)
    trained = [p for p in probe.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, betas=(0.0, 0.99))
    disc_optimizer = torch.optim.AdamW(discriminators.parameters(), lr=args.lr, betas=(0.0, 0.99))
    start = time.time()

    def report(step: int, loss: float) -> None:
        row = {
            "step": step,
            "loss": round(loss, 4),
            **measure(probe, probes),
            "seconds": round(time.time() - start),
        }
        print(json.dumps(row), flush=True)
        if args.log:
            with open(args.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    for step in range(1, args.steps + 1):
        if crops is not None:
            f0, real = crops.batch(args.batch_size)
        else:
            low = rng.uniform(80, 250, (args.batch_size, 1))
            f0_np = np.linspace(low, low * rng.uniform(0.8, 1.25, (args.batch_size, 1)), args.frames, axis=1)[
                ..., 0
            ]
            f0, real = torch.from_numpy(f0_np.astype(np.float32)), torch.from_numpy(harmonic_tone(f0_np, rng))
        fake = probe(f0, real)
        loss = loss_fn(fake, real).mean()
        if args.lambda_gen > 0:
            loss = adversarial_step(discriminators, disc_optimizer, real, fake, loss, args.lambda_gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            report(step, loss.detach().item())
    if args.save:
        save_tensors(args.save, {k: v.detach().contiguous() for k, v in generator.state_dict().items()})
        print(f"generator weights: {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
