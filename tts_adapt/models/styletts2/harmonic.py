"""Harmonic-plus-noise generator: the network shapes a spectrum, F0 alone sets the pitch.

The HiFi-GAN and iSTFTNet generators receive the harmonic source as one input among others, and a
generator trained with reconstruction losses can ignore it: every one we trained from scratch on a CPU
rendered a buzz at the 80 Hz frame rate whatever its F0 (docs/history.md, "Every official-type
decoder ..."). Here the output *is* the source: a sum of harmonics of F0 plus band-shaped noise, both under
one spectral envelope the network predicts per frame, split between them by a per-band aperiodicity
(the harmonic-plus-noise model of DDSP, Engel et al. 2020, with WORLD's envelope/aperiodicity split).
The pitch cannot be lost because no weight can change it; what the network learns is the envelope,
which the mel loss measures directly.

One envelope rather than separate harmonic and noise gains: with separate gains, whichever part
dominates a band takes all of a log-spectral loss's gradient there, and in training the noise took
every band above ~1.5 kHz, where the mel loss cannot tell harmonics from noise (measured).

Not part of the official StyleTTS 2 (whose checkpoints use ``hifigan`` or ``istftnet``); it is a
decoder type for models pre-trained with this toolkit. The rest of the decoder is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .norm import weight_norm
from .source import SourceDraws
from .vocoder_blocks import AdaINResBlock1

#: F0 below this (Hz) counts as unvoiced: no harmonics, as the hn-NSF source's ``voiced_threshold``.
VOICED_THRESHOLD = 10.0
#: Taps of each noise band's FIR filter.
NOISE_TAPS = 63


def band_filters(bands: int, taps: int = NOISE_TAPS) -> torch.Tensor:
    """``[bands, 1, taps]`` Hann-windowed sinc band-passes splitting 0..Nyquist into equal bands.

    Summed, they are a delayed unit impulse (the windowed sinc differences telescope), so equal band
    gains pass white noise unchanged."""
    n = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    window = torch.hann_window(taps, periodic=False, dtype=torch.float64)
    edges = torch.linspace(0, 0.5, bands + 1, dtype=torch.float64)  # cycles per sample

    def lowpass(fc: torch.Tensor) -> torch.Tensor:
        return 2 * fc * torch.sinc(2 * fc * n)

    out = torch.stack([lowpass(edges[b + 1]) - lowpass(edges[b]) for b in range(bands)])
    return (out * window).float().unsqueeze(1)


def frames_to_samples(x: torch.Tensor, hop: int) -> torch.Tensor:
    """``[B, C, T]`` frame values -> ``[B, C, T*hop]`` per sample, linear between frames, with frame
    ``t`` at sample ``t*hop``: the centre of mel frame ``t`` (centred STFT), where the F0 and energy
    targets are measured. (``F.interpolate(..., 'linear')`` would put it half a frame later, and the
    upper harmonics of a moving F0 away from the target's.)"""
    t = x.shape[-1]
    pos = torch.arange(t * hop, device=x.device, dtype=torch.float32) / hop
    lower = torch.floor(pos)
    weight = (pos - lower).to(x.dtype)
    i0 = lower.long()
    i1 = (i0 + 1).clamp(max=t - 1)
    return x[..., i0] * (1 - weight) + x[..., i1] * weight


def harmonic_phases(f0: torch.Tensor, hop: int, sampling_rate: int) -> torch.Tensor:
    """Frame F0 ``[B, T]`` (Hz) -> phase of the fundamental per sample ``[B, T*hop]``, in cycles [0, 1).

    F0 is interpolated linearly between frames (:func:`frames_to_samples`). The phase is integrated
    within each frame in float32 and across frames in float64, so it never drifts over long utterances
    and equals any other summation order to rounding level."""
    b, t = f0.shape
    f0_up = frames_to_samples(f0.unsqueeze(1), hop)
    local = torch.cumsum((f0_up / sampling_rate).reshape(b, t, hop), dim=-1)
    totals = local[..., -1].double()
    offsets = torch.cumsum(totals, dim=-1) - totals  # phase at the start of each frame
    offsets = (offsets - torch.floor(offsets)).to(local.dtype)
    phase = offsets.unsqueeze(-1) + local
    return (phase - torch.floor(phase)).reshape(b, t * hop)


class HarmonicSource(nn.Module):
    """The excitation, without weights: frame F0 ``[B, T]`` -> ``[B, K+1, T*hop]``, the unit harmonics
    ``sin(2π k φ)`` for k = 1..K and one row of white noise.

    Noise comes from ``draws.noise[..., 0]``, one generator per row, the global RNG, or, when
    ``deterministic``, a fixed seed (unvoiced sounds need noise, so "deterministic" means repeatable,
    not silent). Kept apart so that an exported graph can take the excitation as an input."""

    def __init__(self, sampling_rate: int, hop: int, n_harmonics: int) -> None:
        super().__init__()
        self.sampling_rate, self.hop, self.n_harmonics = int(sampling_rate), int(hop), int(n_harmonics)
        self.register_buffer(
            "harmonic_numbers", torch.arange(1, n_harmonics + 1, dtype=torch.float32), persistent=False
        )

    def forward(
        self,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        with torch.no_grad():
            b, t = f0.shape
            samples = t * self.hop
            phase = harmonic_phases(f0.float(), self.hop, self.sampling_rate)
            k_phase = self.harmonic_numbers.view(1, -1, 1) * phase.unsqueeze(1)
            sines = torch.sin(2 * math.pi * (k_phase - torch.floor(k_phase)))
            if draws is not None:
                noise = draws.noise[:, :samples, 0].to(sines)
            elif deterministic:
                noise = torch.randn(b, samples, generator=torch.Generator().manual_seed(0)).to(sines)
            elif generators is not None:
                noise = torch.stack([torch.randn(samples, generator=g) for g in generators]).to(sines)
            else:
                noise = torch.randn(b, samples, device=sines.device)
            return torch.cat([sines, noise.unsqueeze(1)], dim=1).to(f0.dtype)


class HarmonicNoiseGenerator(nn.Module):
    """``x [B, C, T]``, style ``s``, F0 ``[B, T]`` (one value per ``hop`` samples) -> ``[B, 1, T*hop]``.

    ``resblock_kernel_sizes``/``resblock_dilation_sizes`` give the style-conditioned residual blocks
    that run at frame rate; ``upsample_rates`` multiply to ``hop``. The last convolution predicts a log
    amplitude-density envelope at ``envelope_bins`` points from 0 to Nyquist and an aperiodicity logit
    for each of ``noise_bands`` equal-width bands. In voiced frames (F0 above 10 Hz) harmonic ``k``
    gets the envelope at ``k·F0`` scaled to the same power density as noise (``sqrt(4 F0 / sr)``) times
    ``sqrt(1 - a)``, and each noise band the envelope at its centre times ``sqrt(a)``; unvoiced frames
    are all noise.
    """

    #: The decoder's official F0 box-filter augmentation is off for this generator: its pitch is the F0
    #: itself, so a smoothed F0 would put the excitation's harmonics away from the target's, and it
    #: learns noise in their place.
    smooth_f0_in_training = False

    def __init__(
        self,
        style_dim: int,
        resblock_kernel_sizes: list[int],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        resblock_dilation_sizes: list[list[int]],
        upsample_kernel_sizes: list[int] | None = None,
        sampling_rate: int = 24000,
        n_harmonics: int = 100,
        envelope_bins: int = 128,
        noise_bands: int = 16,
    ) -> None:
        super().__init__()
        self.hop = math.prod(upsample_rates)
        self.sampling_rate = sampling_rate
        self.n_harmonics, self.envelope_bins, self.noise_bands = n_harmonics, envelope_bins, noise_bands
        ch = upsample_initial_channel
        self.resblocks = nn.ModuleList(
            AdaINResBlock1(ch, k, d, style_dim)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes)
        )
        self.conv_post = weight_norm(nn.Conv1d(ch, envelope_bins + noise_bands, 7, 1, padding=3))
        with torch.no_grad():  # start quiet (density e^-3.5) and mostly harmonic (a = 0.12)
            self.conv_post.bias[:envelope_bins] = -3.5
            self.conv_post.bias[envelope_bins:] = -2.0
        self.register_buffer("band_fir", band_filters(noise_bands), persistent=False)
        self.source = HarmonicSource(sampling_rate, self.hop, n_harmonics)
        # its own copy: an exported graph replaces ``source`` by the given excitation
        self.register_buffer(
            "harmonic_numbers", torch.arange(1, n_harmonics + 1, dtype=torch.float32), persistent=False
        )
        # each noise band reads the envelope at its centre frequency (linear interpolation)
        centres = (torch.arange(noise_bands, dtype=torch.float64) + 0.5) / noise_bands * (envelope_bins - 1)
        self.register_buffer("centre_lower", torch.floor(centres).long(), persistent=False)
        self.register_buffer("centre_weight", (centres - torch.floor(centres)).float(), persistent=False)

    def render(
        self, x: torch.Tensor, s: torch.Tensor, f0: torch.Tensor, excitation: torch.Tensor
    ) -> torch.Tensor:
        """The learned part: envelope and aperiodicity from ``x``, applied to a given excitation."""
        for block in self.resblocks:
            x = block(x, s)
        out = self.conv_post(F.leaky_relu(x, 0.1))
        envelope = out[:, : self.envelope_bins]
        aperiodicity = torch.sigmoid(out[:, self.envelope_bins :])  # [B, bands, T]
        f0 = f0.detach().to(out.dtype)
        voiced = (f0 > VOICED_THRESHOLD).to(out.dtype).unsqueeze(1)  # [B, 1, T]
        nyquist = self.sampling_rate / 2

        freqs = self.harmonic_numbers.to(out.dtype).view(1, -1, 1) * f0.unsqueeze(1)  # [B, K, T]
        below = (freqs < nyquist).to(out.dtype)
        pos = (freqs / nyquist * (self.envelope_bins - 1)).clamp(0, self.envelope_bins - 1.001)
        lower = torch.floor(pos)
        weight = pos - lower
        lower = lower.long()
        e0 = torch.gather(envelope, 1, lower)
        e1 = torch.gather(envelope, 1, lower + 1)
        band = torch.floor(freqs / nyquist * self.noise_bands).clamp(0, self.noise_bands - 1).long()
        periodic = (1 - torch.gather(aperiodicity, 1, band)).clamp(min=1e-6).sqrt()
        density = torch.sqrt(4 * f0.clamp(min=0) / self.sampling_rate).unsqueeze(1)
        amp = torch.exp(e0 + weight * (e1 - e0)) * density * periodic * below * voiced
        amp = frames_to_samples(amp, self.hop)
        harmonics = (amp * excitation[:, : self.n_harmonics]).sum(1, keepdim=True)

        lo = envelope[:, self.centre_lower]
        hi = envelope[:, (self.centre_lower + 1).clamp(max=self.envelope_bins - 1)]
        level = torch.exp(lo + self.centre_weight.to(out.dtype).view(1, -1, 1) * (hi - lo))
        share = voiced * aperiodicity + (1 - voiced)
        gains = level * share.clamp(min=1e-6).sqrt()
        gains = frames_to_samples(gains, self.hop)
        fir = self.band_fir.to(out.dtype)
        bands = F.conv1d(excitation[:, self.n_harmonics :], fir, padding=NOISE_TAPS // 2)
        noise = (gains * bands).sum(1, keepdim=True)
        return harmonics + noise

    def forward(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        f0: torch.Tensor,
        deterministic: bool = False,
        generators: Sequence[torch.Generator] | None = None,
        draws: SourceDraws | None = None,
    ) -> torch.Tensor:
        return self.render(x, s, f0, self.source(f0, deterministic, generators, draws))
