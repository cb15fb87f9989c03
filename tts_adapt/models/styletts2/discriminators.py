"""The StyleTTS 2 discriminators: multi-period (``mpd``), multi-resolution spectrogram (``msd``) and the
WavLM speech-language-model discriminator (``wd``).

Layouts and state-dict names follow the official ``Modules/discriminators.py``; every convolution is
weight-normalised with the hook-based API (keys ``weight_g``/``weight_v``), as the published checkpoint
stores them. ``use_spectral_norm=True`` switches to spectral normalisation as in the official code.
The loss functions that use these outputs live in :mod:`tts_adapt.train.adversarial`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tts_adapt.models.styletts2.norm import spectral_norm, weight_norm
from tts_adapt.models.styletts2.phase_conv import spectrogram_conv2d

LRELU_SLOPE = 0.1

# (scores, feature maps) of one sub-discriminator
DiscOutput = tuple[torch.Tensor, list[torch.Tensor]]
# (real scores, generated scores, real feature maps, generated feature maps), one entry per sub-discriminator
MultiDiscOutput = tuple[
    list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]
]


# The official widths; smaller ones (config ``model_params.mpd_channels``) make test-sized models.
MPD_CHANNELS = (32, 128, 512, 1024)
MSD_CHANNELS = 32


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


def _norm(use_spectral_norm: bool):
    return spectral_norm if use_spectral_norm else weight_norm


class DiscriminatorP(nn.Module):
    """HiFi-GAN period discriminator: folds ``[B, 1, T]`` into ``[B, 1, T/p, p]`` and convolves along time."""

    def __init__(
        self,
        period: int,
        kernel_size: int = 5,
        stride: int = 3,
        use_spectral_norm: bool = False,
        channels: Sequence[int] = MPD_CHANNELS,
    ) -> None:
        super().__init__()
        self.period = period
        norm = _norm(use_spectral_norm)
        pad = (get_padding(5, 1), 0)  # the official code pads for a width-5 kernel whatever kernel_size is
        widths = [1, *channels]
        last = widths[-1]
        self.convs = nn.ModuleList(
            [
                norm(nn.Conv2d(cin, cout, (kernel_size, 1), (stride, 1), padding=pad))
                for cin, cout in zip(widths[:-1], widths[1:], strict=True)
            ]
            + [norm(nn.Conv2d(last, last, (kernel_size, 1), 1, padding=(2, 0)))]
        )
        self.conv_post = norm(nn.Conv2d(last, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        x = x.view(b, c, -1, self.period)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators for periods 2, 3, 5, 7 and 11. ``forward(real, generated)`` on ``[B, 1, T]``."""

    periods = (2, 3, 5, 7, 11)

    def __init__(self, channels: Sequence[int] = MPD_CHANNELS) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorP(p, channels=channels) for p in self.periods])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> MultiDiscOutput:
        return _run_pairwise(self.discriminators, y, y_hat)


class SpecDiscriminator(nn.Module):
    """2-D convolutional discriminator on the STFT magnitude ``[B, 1, frames, fft_size // 2 + 1]``."""

    def __init__(
        self,
        fft_size: int = 1024,
        shift_size: int = 120,
        win_length: int = 600,
        window: str = "hann_window",
        use_spectral_norm: bool = False,
        channels: int = MSD_CHANNELS,
    ) -> None:
        super().__init__()
        norm = _norm(use_spectral_norm)
        c = channels
        self.fft_size = fft_size
        self.shift_size = shift_size
        self.win_length = win_length
        # Not in the official state dict, hence non-persistent; a buffer so .to()/.double() move it.
        self.register_buffer("window", getattr(torch, window)(win_length), persistent=False)
        self.discriminators = nn.ModuleList(
            [norm(nn.Conv2d(1, c, kernel_size=(3, 9), padding=(1, 4)))]
            + [norm(nn.Conv2d(c, c, kernel_size=(3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)]
            + [norm(nn.Conv2d(c, c, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)))]
        )
        self.out = norm(nn.Conv2d(c, 1, 3, 1, 1))

    def magnitude(self, y: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` audio -> STFT magnitude ``[B, frames, fft_size // 2 + 1]`` (centred, reflect-padded)."""
        spec = torch.stft(
            y, self.fft_size, self.shift_size, self.win_length, self.window.to(y.dtype), return_complex=True
        )
        return spec.abs().transpose(2, 1)

    def forward(self, y: torch.Tensor) -> DiscOutput:
        x = self.magnitude(y.squeeze(1)).unsqueeze(1)
        fmap = []
        for conv in self.discriminators:
            x = F.leaky_relu(spectrogram_conv2d(conv, x), LRELU_SLOPE)
            fmap.append(x)
        x = spectrogram_conv2d(self.out, x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiResSpecDiscriminator(nn.Module):
    """Three spectrogram discriminators (FFT 1024/2048/512, hop 120/240/50, window 600/1200/240)."""

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hop_sizes: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        window: str = "hann_window",
        channels: int = MSD_CHANNELS,
    ) -> None:
        super().__init__()
        if not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
            raise ValueError(
                "MultiResSpecDiscriminator: fft_sizes, hop_sizes and win_lengths differ in length"
            )
        self.discriminators = nn.ModuleList(
            [
                SpecDiscriminator(f, h, w, window, channels=channels)
                for f, h, w in zip(fft_sizes, hop_sizes, win_lengths, strict=True)
            ]
        )

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> MultiDiscOutput:
        return _run_pairwise(self.discriminators, y, y_hat)


def _run_pairwise(discriminators: nn.ModuleList, y: torch.Tensor, y_hat: torch.Tensor) -> MultiDiscOutput:
    real_scores, fake_scores, real_fmaps, fake_fmaps = [], [], [], []
    for disc in discriminators:
        score_r, fmap_r = disc(y)
        score_g, fmap_g = disc(y_hat)
        real_scores.append(score_r)
        fake_scores.append(score_g)
        real_fmaps.append(fmap_r)
        fake_fmaps.append(fmap_g)
    return real_scores, fake_scores, real_fmaps, fake_fmaps


class WavLMDiscriminator(nn.Module):
    """Discriminator on stacked speech-LM hidden states ``[B, slm_hidden * slm_layers, frames]``.

    A 1x1 convolution reduces the stacked layers, three width-5 convolutions with LeakyReLU follow and a
    final convolution gives one score per frame; ``forward`` returns the scores ``[B, frames]`` only.
    """

    def __init__(
        self,
        slm_hidden: int = 768,
        slm_layers: int = 13,
        initial_channel: int = 64,
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        norm = _norm(use_spectral_norm)
        ch = initial_channel
        self.pre = norm(nn.Conv1d(slm_hidden * slm_layers, ch, 1, 1, padding=0))
        self.convs = nn.ModuleList(
            [
                norm(nn.Conv1d(ch, ch * 2, kernel_size=5, padding=2)),
                norm(nn.Conv1d(ch * 2, ch * 4, kernel_size=5, padding=2)),
                norm(nn.Conv1d(ch * 4, ch * 4, 5, 1, padding=2)),
            ]
        )
        self.conv_post = norm(nn.Conv1d(ch * 4, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
        return torch.flatten(self.conv_post(x), 1, -1)
