"""The StyleTTS 2 pitch extractor: ``JDCNet`` (Kum et al., joint detection and classification of melody).

StyleTTS 2 uses a JDC network trained to regress F0 (``num_class=1``) on log-mels: its first output is
the F0 target for the prosody predictor and the decoder during training. Layout, names and maths follow
the official ``Utils/JDC/model.py`` so ``bst.t7`` (``torch.load(...)['net']``) and the
``pitch_extractor`` entry of a checkpoint load strictly, BatchNorm statistics included.

Only the classifier branch is computed; the detector branch (``detector_conv``, ``bilstm_detector``,
``detector``) is kept for its weights, as in the official model. Unlike the official code, which casts
the input with ``.float()``, the input is cast to the module's own dtype so ``module.double()`` works.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """Pre-activation residual block that halves the frequency axis: BN -> LeakyReLU -> MaxPool(1, 2), then
    conv3x3 -> BN -> LeakyReLU -> conv3x3 plus a 1x1-conv shortcut when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, leaky_relu_slope: float = 0.01) -> None:
        super().__init__()
        self.downsample = in_channels != out_channels
        self.pre_conv = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.LeakyReLU(leaky_relu_slope),
            nn.MaxPool2d(kernel_size=(1, 2)),
        )
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(leaky_relu_slope),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        )
        self.conv1by1 = nn.Conv2d(in_channels, out_channels, 1, bias=False) if self.downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_conv(x)
        shortcut = self.conv1by1(x) if self.conv1by1 is not None else x
        return self.conv(x) + shortcut


class JDCNet(nn.Module):
    """Input: a log-mel ``[B, 1, n_mels=80, T]``. ``forward`` returns, like the official model:

    * ``f0``: ``|classifier(BiLSTM(features))|`` ``[B, T, num_class]`` passed through ``.squeeze()``
      (so ``[T]`` for one utterance with ``num_class=1``, ``[B, T]`` for a batch);
    * ``gan_feature``: the pooled block's activations before its max-pool, ``[B, 256, T, 10]``;
    * ``pooled``: the pooling block's output ``[B, 256, T, 2]`` (eval: after the no-op dropout).

    The 80 mel bins are halved three times by the residual blocks and by 4 in the pooling block, which
    leaves 2 bins x 256 channels = the 512 features the BiLSTMs read; other mel sizes do not fit.
    """

    def __init__(self, num_class: int = 722, seq_len: int = 31, leaky_relu_slope: float = 0.01) -> None:
        super().__init__()
        self.num_class = num_class
        self.seq_len = seq_len  # kept for signature parity; the sequence length comes from the input
        slope = leaky_relu_slope
        self.conv_block = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(slope),
            nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False),
        )
        self.res_block1 = ResBlock(64, 128, slope)
        self.res_block2 = ResBlock(128, 192, slope)
        self.res_block3 = ResBlock(192, 256, slope)
        self.pool_block = nn.Sequential(
            nn.BatchNorm2d(256),
            nn.LeakyReLU(slope),
            nn.MaxPool2d(kernel_size=(1, 4)),
            nn.Dropout(0.2),
        )
        # Parameter-free pools of the official auxiliary branch (unused in forward; no state-dict keys).
        self.maxpool1 = nn.MaxPool2d(kernel_size=(1, 40))
        self.maxpool2 = nn.MaxPool2d(kernel_size=(1, 20))
        self.maxpool3 = nn.MaxPool2d(kernel_size=(1, 10))
        self.detector_conv = nn.Sequential(
            nn.Conv2d(640, 256, 1, bias=False),
            nn.BatchNorm2d(256),
            nn.LeakyReLU(slope),
            nn.Dropout(0.2),
        )
        self.bilstm_classifier = nn.LSTM(512, 256, batch_first=True, bidirectional=True)
        self.bilstm_detector = nn.LSTM(512, 256, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(512, num_class)
        self.detector = nn.Linear(512, 2)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
        elif isinstance(m, (nn.LSTM, nn.LSTMCell)):
            for p in m.parameters():
                if p.dim() >= 2:
                    nn.init.orthogonal_(p)
                else:
                    nn.init.normal_(p)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"JDCNet expects a mel batch [B, 1, n_mels, T], got shape {tuple(x.shape)}")
        frames = x.shape[-1]
        x = x.to(self.classifier.weight.dtype).transpose(-1, -2)  # [B, 1, T, n_mels]
        x = self.res_block3(self.res_block2(self.res_block1(self.conv_block(x))))
        activated = self.pool_block[1](self.pool_block[0](x))
        gan_feature = activated.transpose(-1, -2)
        pooled = self.pool_block[3](self.pool_block[2](activated))  # [B, 256, T, 2]

        features = pooled.permute(0, 2, 1, 3).reshape(-1, frames, 512)
        hidden, _ = self.bilstm_classifier(features)
        f0 = self.classifier(hidden.reshape(-1, 512)).view(-1, frames, self.num_class)
        return torch.abs(f0.squeeze()), gan_feature, pooled
