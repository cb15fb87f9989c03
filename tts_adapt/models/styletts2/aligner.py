"""The StyleTTS 2 text aligner: ``ASRCNN``, a small CTC + attention ASR model.

StyleTTS 2 uses it for the monotonic text-speech alignment during training (the attention matrix of its
sequence-to-sequence head is turned into hard durations). The layout, names and maths follow the
official ``Utils/ASR`` model so its ``epoch_00080.pth`` state dict (``torch.load(...)['model']``) and the
``text_aligner`` entry of a second-stage checkpoint load strictly:

* an MFCC front end (a fixed orthonormal DCT of the log-mel, buffer ``to_mfcc.dct_mat``);
* a stride-2 convolution, ``n_layers`` residual dilated-convolution blocks and a 1x1 projection;
* a CTC head ``ctc_linear`` over the projected frames;
* ``asr_s2s``: an LSTM-cell decoder with location-sensitive attention over the projected frames.

The official decoder replaces about 10 % of the input tokens by the ``unk`` token with ``torch.rand``
even in eval mode. That stays the default; set ``token_mask_prob=0`` (constructor argument or the
attribute of the same name) for deterministic evaluation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TOKEN_MASK_PROB = 0.1


class ConvNorm(nn.Module):
    """A ``Conv1d`` held as ``.conv`` (the official key layout) with Xavier-uniform initialisation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        gain: str = "linear",
    ) -> None:
        super().__init__()
        if padding is None:
            if kernel_size % 2 != 1:
                raise ValueError(f"ConvNorm: 'same' padding needs an odd kernel_size, got {kernel_size}")
            padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LinearNorm(nn.Module):
    """A ``Linear`` held as ``.linear_layer`` (the official key layout) with Xavier-uniform initialisation."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, gain: str = "linear") -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class MFCC(nn.Module):
    """Log-mel ``[B, n_mels, T]`` to cepstra ``[B, n_mfcc, T]`` with an orthonormal DCT-II (``dct_mat``)."""

    def __init__(self, n_mfcc: int = 40, n_mels: int = 80) -> None:
        super().__init__()
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.register_buffer("dct_mat", _dct_matrix(n_mfcc, n_mels))  # [n_mels, n_mfcc]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        unbatched = mel.dim() == 2
        if unbatched:
            mel = mel.unsqueeze(0)
        out = torch.matmul(mel.transpose(1, 2), self.dct_mat).transpose(1, 2)
        return out.squeeze(0) if unbatched else out


def _dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II basis as columns, ``[n_mels, n_mfcc]``.

    Computed in float32 in the same order as torchaudio's ``create_dct(n_mfcc, n_mels, 'ortho')``, which
    made the official buffer, so a fresh model holds bit-identical values.
    """
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    basis = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # [n_mfcc, n_mels]
    basis[0] *= 1.0 / math.sqrt(2.0)
    basis *= math.sqrt(2.0 / float(n_mels))
    return basis.t().contiguous()


class ConvBlock(nn.Module):
    """``n_conv`` residual units: dilated conv -> ReLU -> GroupNorm(8) -> dropout -> conv -> ReLU -> dropout.

    Unit ``i`` uses dilation ``3**i``; ``blocks.i.{0,2,4}`` are the parameterised layers (official indices).
    """

    def __init__(self, hidden_dim: int, n_conv: int = 3, dropout_p: float = 0.2, n_groups: int = 8) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [self._unit(hidden_dim, 3**i, dropout_p, n_groups) for i in range(n_conv)]
        )

    @staticmethod
    def _unit(dim: int, dilation: int, dropout_p: float, n_groups: int) -> nn.Sequential:
        return nn.Sequential(
            ConvNorm(dim, dim, kernel_size=3, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.GroupNorm(n_groups, dim),
            nn.Dropout(dropout_p),
            ConvNorm(dim, dim, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout_p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.blocks:
            x = unit(x) + x
        return x


class LocationLayer(nn.Module):
    """Convolves the previous and cumulative attention weights ``[B, 2, L]`` to ``[B, L, attention_dim]``."""

    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int) -> None:
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, gain="tanh")

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        return self.location_dense(self.location_conv(weights_cat).transpose(1, 2))


class LocationSensitiveAttention(nn.Module):
    """Tacotron-2 style additive attention: ``e = v^T tanh(W q + U f(loc) + V m)``, softmax over frames."""

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int,
        n_location_filters: int,
        location_kernel: int,
    ) -> None:
        super().__init__()
        self.query_layer = LinearNorm(query_dim, attention_dim, bias=False, gain="tanh")
        self.memory_layer = LinearNorm(memory_dim, attention_dim, bias=False, gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(n_location_filters, location_kernel, attention_dim)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        weights_cat: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the context ``[B, memory_dim]`` and the attention weights ``[B, L]``."""
        energies = self.v(
            torch.tanh(
                self.query_layer(query.unsqueeze(1)) + self.location_layer(weights_cat) + processed_memory
            )
        ).squeeze(-1)
        if mask is not None:
            energies = energies.masked_fill(mask, float("-inf"))
        weights = F.softmax(energies, dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


class ASRS2S(nn.Module):
    """Attention decoder that reads the token sequence (teacher forcing) and attends over the frames.

    It emits one step for the start token plus one per input token, so ``T`` tokens give ``T + 1`` steps.
    """

    sos = 1
    eos = 2
    unk_index = 3

    def __init__(
        self,
        embedding_dim: int = 256,
        hidden_dim: int = 512,
        n_location_filters: int = 32,
        location_kernel_size: int = 63,
        n_token: int = 40,
        token_mask_prob: float = DEFAULT_TOKEN_MASK_PROB,
    ) -> None:
        super().__init__()
        self.decoder_rnn_dim = hidden_dim
        self.token_mask_prob = token_mask_prob
        self.embedding = nn.Embedding(n_token, embedding_dim)
        bound = math.sqrt(6.0 / hidden_dim)
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.project_to_n_symbols = nn.Linear(hidden_dim, n_token)
        self.attention_layer = LocationSensitiveAttention(
            hidden_dim, hidden_dim, hidden_dim, n_location_filters, location_kernel_size
        )
        self.decoder_rnn = nn.LSTMCell(hidden_dim + embedding_dim, hidden_dim)
        self.project_to_hidden = nn.Sequential(LinearNorm(hidden_dim * 2, hidden_dim), nn.Tanh())

    def mask_tokens(self, text: torch.Tensor) -> torch.Tensor:
        """Replace each token by ``unk`` with probability ``token_mask_prob`` (the official augmentation).

        The draw uses the default CPU generator with the text's shape, as the official code does, so a
        seeded run consumes the same random numbers. With probability 0 nothing is drawn.
        """
        if self.token_mask_prob <= 0:
            return text
        hit = (torch.rand(text.shape) < self.token_mask_prob).to(text.device)
        return text.masked_fill(hit, self.unk_index)

    def forward(
        self, memory: torch.Tensor, memory_mask: torch.Tensor | None, text_input: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """memory ``[B, L, H]``, memory_mask ``[B, L]`` (True = padding), text ``[B, T]`` ->
        hidden ``[B, T+1, H]``, logits ``[B, T+1, n_token]``, attention ``[B, T+1, L]``."""
        batch, frames, mem_dim = memory.shape
        if text_input.dim() != 2 or text_input.shape[0] != batch:
            raise ValueError(
                f"ASRS2S: text_input must be [B={batch}, T] token ids, got shape {tuple(text_input.shape)}"
            )
        tokens = self.mask_tokens(text_input)
        start = torch.full((batch, 1), self.sos, dtype=tokens.dtype, device=tokens.device)
        inputs = self.embedding(torch.cat([start, tokens], dim=1))  # [B, T+1, E]

        h = memory.new_zeros(batch, self.decoder_rnn_dim)
        c = memory.new_zeros(batch, self.decoder_rnn_dim)
        weights = memory.new_zeros(batch, frames)
        cumulative = memory.new_zeros(batch, frames)
        context = memory.new_zeros(batch, mem_dim)
        processed_memory = self.attention_layer.memory_layer(memory)

        hiddens, logits, alignments = [], [], []
        for step in range(inputs.shape[1]):
            h, c = self.decoder_rnn(torch.cat([inputs[:, step], context], dim=-1), (h, c))
            weights_cat = torch.stack([weights, cumulative], dim=1)
            context, weights = self.attention_layer(h, memory, processed_memory, weights_cat, memory_mask)
            cumulative = cumulative + weights
            hidden = self.project_to_hidden(torch.cat([h, context], dim=-1))
            logits.append(self.project_to_n_symbols(F.dropout(hidden, 0.5, self.training)))
            hiddens.append(hidden)
            alignments.append(weights)
        return torch.stack(hiddens, 1), torch.stack(logits, 1), torch.stack(alignments, 1)


class ASRCNN(nn.Module):
    """The text aligner. ``forward(mel)`` gives CTC logits ``[B, T/2, n_token]``; with ``text_input`` it also
    runs the attention decoder and returns ``(ctc_logits, s2s_logits [B, T_text+1, n_token],
    s2s_attn [B, T_text+1, T/2])``.

    ``token_mask_prob`` (default 0.1, as official) is the chance that the decoder replaces an input token by
    ``unk``; it applies in eval mode too. Set it to 0 (here or via the attribute) for deterministic output.
    """

    n_down = 1  # the mel is downsampled by 2**n_down in time

    def __init__(
        self,
        input_dim: int = 80,
        hidden_dim: int = 256,
        n_token: int = 35,
        n_layers: int = 6,
        token_embedding_dim: int = 256,
        *,
        token_mask_prob: float = DEFAULT_TOKEN_MASK_PROB,
    ) -> None:
        super().__init__()
        if input_dim % 2:
            raise ValueError(f"ASRCNN: input_dim must be even (n_mfcc = input_dim // 2), got {input_dim}")
        self.n_token = n_token
        self.to_mfcc = MFCC(n_mfcc=input_dim // 2, n_mels=input_dim)
        self.init_cnn = ConvNorm(input_dim // 2, hidden_dim, kernel_size=7, padding=3, stride=2)
        self.cnns = nn.Sequential(
            *[nn.Sequential(ConvBlock(hidden_dim), nn.GroupNorm(1, hidden_dim)) for _ in range(n_layers)]
        )
        self.projection = ConvNorm(hidden_dim, hidden_dim // 2)
        self.ctc_linear = nn.Sequential(
            LinearNorm(hidden_dim // 2, hidden_dim), nn.ReLU(), LinearNorm(hidden_dim, n_token)
        )
        self.asr_s2s = ASRS2S(
            embedding_dim=token_embedding_dim,
            hidden_dim=hidden_dim // 2,
            n_token=n_token,
            token_mask_prob=token_mask_prob,
        )

    @property
    def token_mask_prob(self) -> float:
        return self.asr_s2s.token_mask_prob

    @token_mask_prob.setter
    def token_mask_prob(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"token_mask_prob must be in [0, 1], got {value}")
        self.asr_s2s.token_mask_prob = float(value)

    def _encode(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, T]`` -> projected frames ``[B, hidden_dim // 2, ceil(T / 2)]``."""
        return self.projection(self.cnns(self.init_cnn(self.to_mfcc(mel))))

    def forward(
        self,
        x: torch.Tensor,
        src_key_padding_mask: torch.Tensor | None = None,
        text_input: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 3:
            raise ValueError(f"ASRCNN expects a mel batch [B, n_mels, T], got shape {tuple(x.shape)}")
        frames = self._encode(x).transpose(1, 2)  # [B, L, H/2]
        ctc_logits = self.ctc_linear(frames)
        if text_input is None:
            return ctc_logits
        _, s2s_logits, s2s_attn = self.asr_s2s(frames, src_key_padding_mask, text_input)
        return ctc_logits, s2s_logits, s2s_attn

    def get_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Projected frames ``[B, hidden_dim/2, L]`` of a mel ``[B, 1, n_mels, T]`` or ``[B, n_mels, T]``."""
        return self._encode(x.squeeze(1))
