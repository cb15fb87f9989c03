"""Few-channel 2-D convolutions rewritten so that CPU kernels can vectorise them.

oneDNN's CPU convolutions vectorise over channels. A spectrogram discriminator opens with a 1-channel
convolution over a ~700 x 257 magnitude image, so most SIMD lanes idle: it runs at about 8 GFLOP/s, the
slowest layer of an adaptation step on small models. Splitting the width axis into ``P`` phases (the
polyphase identity of multirate filtering) turns it into an equivalent convolution with ``P`` times the
input channels and ``P / stride`` times the output channels over a ``P`` times narrower image::

    x[c, h, P*J + p]  ->  X[p*C + c, h, J]         (a view of the channels-last layout)
    y[o, h, B*J + q]  <-  Y[q*O + o, h, J]         (B = P / stride output phases, also a view)

    Y[q*O + o, :, J] = sum_{p, c, d} W'[q*O + o, p*C + c, :, d] X[p*C + c, :, J + d + d_min]

where tap ``t`` of the original kernel lands at ``m = stride*q + dilation*t - padding``, i.e. phase
``m mod P`` and block offset ``m div P``; every other entry of ``W'`` is zero. Each output is still one
dot product over the same products (only their summation order changes), the weight gradient flows back
through the gather that builds ``W'``, and autograd's ordinary convolution backward gives both
gradients. The rewrite runs about 10x faster for one input channel on a 2-core CPU
(``benchmarks/bench_adapt_step.py``, docs/training.md); for four or more input channels oneDNN's own
kernels in channels-last layout are as fast, so only few-channel inputs are rewritten.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

# Width phases of the rewrite: 4 keeps the added zero taps to a third (3 block taps x 4 phases = 12
# products where a width-9 kernel has 9) while giving oneDNN 4x the channels.
PHASES = 4
# Rewrite only convolutions with at most this many input channels; wider ones vectorise already.
MAX_IN_CHANNELS = 2

_NORM_HOOKS = (WeightNorm, SpectralNorm)


@lru_cache(maxsize=64)  # a few layer shapes, asked for on every forward pass
def phase_taps(
    kernel: int, stride: int, dilation: int, padding: int, phases: int
) -> tuple[torch.Tensor, int]:
    """Which original tap feeds each (output phase, input phase, block offset) of the rewrite.

    Returns ``(taps, d_min)``: ``taps[q, p, d]`` is the tap index ``t`` (``kernel`` where no tap lands,
    an index into a zero appended to the kernel) and ``d_min`` the smallest block offset. Cached: the
    table is shared, read-only."""
    if phases % stride:
        raise ValueError(f"phase_taps: {phases} phases are not a multiple of the stride {stride}")
    out_phases = phases // stride
    m = [[stride * q + dilation * t - padding for t in range(kernel)] for q in range(out_phases)]
    d_min = min(v // phases for row in m for v in row)
    d_max = max(v // phases for row in m for v in row)
    taps = torch.full((out_phases, phases, d_max - d_min + 1), kernel, dtype=torch.long)
    for q, row in enumerate(m):
        for t, v in enumerate(row):
            taps[q, v % phases, v // phases - d_min] = t
    return taps, d_min


def phase_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    phases: int = PHASES,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation)`` computed as a width-polyphase convolution.

    Ungrouped, zero padding, and ``phases`` a multiple of the width stride. The result is a
    channels-last view ``[B, O, H_out, W_out]``."""
    n, c, h, w = x.shape
    o, ci, kh, kw = weight.shape
    if ci != c:
        raise ValueError(f"phase_conv2d: input has {c} channels, the weight expects {ci}")
    sw, pw, dw = stride[1], padding[1], dilation[1]
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps, d_min = phase_taps(kw, sw, dw, pw, phases)
    out_phases, _, kd = taps.shape
    blocks_in = -(-w // phases)
    blocks_out = -(-w_out // out_phases)
    left = -d_min  # block-padding so that block J + d + d_min exists for every J and d
    right = blocks_out - 1 + kd - left - blocks_in
    # [B, H, W, C] with the width zero-padded (or cropped) to whole blocks, then the phases as channels
    xl = F.pad(x.permute(0, 2, 3, 1), (0, 0, left * phases, (blocks_in + right) * phases - w))
    xb = xl.reshape(n, h, blocks_out - 1 + kd, phases * c).permute(0, 3, 1, 2)
    wb = F.pad(weight, (0, 1))[:, :, :, taps.to(weight.device)]  # [O, C, kh, Bo, P, kd]
    wb = wb.permute(3, 0, 4, 1, 2, 5).reshape(out_phases * o, phases * c, kh, kd).contiguous()
    bb = bias.repeat(out_phases) if bias is not None else None
    yb = F.conv2d(xb, wb, bb, (stride[0], 1), (padding[0], 0), (dilation[0], 1))
    h_out = yb.shape[2]
    y = yb.permute(0, 2, 3, 1).reshape(n, h_out, blocks_out * out_phases, o)[:, :, :w_out]
    return y.permute(0, 3, 1, 2)


def spectrogram_conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for the convolutions of a spectrogram discriminator, fast on CPU.

    Few-channel inputs go through :func:`phase_conv2d`; the others run in channels-last layout, where
    oneDNN's kernels for 4-32 channels run 1.5-3x faster than in the default layout. Elsewhere (CUDA,
    grouped or non-zero-padded convolutions, extra forward hooks) this is ``conv(x)``."""
    if (
        x.device.type != "cpu"
        or type(conv) is not nn.Conv2d
        or conv._forward_hooks
        or not all(isinstance(h, _NORM_HOOKS) for h in conv._forward_pre_hooks.values())
        or conv.groups != 1
        or conv.padding_mode != "zeros"
        or isinstance(conv.padding, str)
    ):
        return conv(x)
    if conv.in_channels > MAX_IN_CHANNELS or PHASES % conv.stride[1]:
        return conv(x.contiguous(memory_format=torch.channels_last))
    # The weight/spectral-norm hooks recompute ``conv.weight`` before each forward; run them as
    # ``conv(x)`` would, then convolve with the fresh weight.
    for hook in conv._forward_pre_hooks.values():
        hook(conv, (x,))
    return phase_conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
