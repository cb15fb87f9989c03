"""Crops of the decoder training step: their length, and waveform crops that never run off a wave.

A mel frame covers ``SAMPLES_PER_MEL_FRAME`` samples, but a wave of ``S`` samples has ``S // 300 + 1``
(centred STFT) frames, so the samples under the last frames can lie past the wave's end (and past the
end of the padded batch tensor for the longest utterance). The official code slices and stacks and
would fail there; we read the samples that exist and fill the rest with zeros (the value the batch
padding holds anyway), so every crop has exactly ``2 * crop * 300`` samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SAMPLES_PER_MEL_FRAME = 300
MIN_CROP_MEL_FRAMES = 80  # the official loop skips batches whose decoder crop is shorter


def decoder_crop_frames(mel_lengths: torch.Tensor, max_len: int) -> int:
    """Decoder crop in aligned frames (2 mel frames each): ``min(min_len / 2 - 1, max_len / 2)``."""
    return int(min(int(mel_lengths.min()) // 2 - 1, max_len // 2))


def crop_waves(
    waves: torch.Tensor,
    wave_lengths: torch.Tensor,
    rows: Sequence[int],
    start_frames: Sequence[int],
    frames: int,
) -> torch.Tensor:
    """Waveform crops ``[len(rows), 2 * frames * 300]`` under aligned frames ``start .. start + frames``.

    ``start_frames`` and ``frames`` count aligned frames (two mel frames each), as the decoder crop
    does; samples past ``wave_lengths[row]`` are zero.
    """
    size = 2 * frames * SAMPLES_PER_MEL_FRAME
    out = waves.new_zeros(len(rows), size)
    for i, (row, start) in enumerate(zip(rows, start_frames)):
        s0 = 2 * int(start) * SAMPLES_PER_MEL_FRAME
        end = min(s0 + size, int(wave_lengths[row]), waves.shape[-1])
        if end > s0:
            out[i, : end - s0] = waves[row, s0:end]
    return out
