"""The long short-term memory of Graves 2013 (with peepholes), its equations written out, as a language model."""

from __future__ import annotations

import torch
from torch import nn

from .base import RecurrentConfig, RecurrentModel
from .layers import Embedding

LSTMConfig = RecurrentConfig  # n_embd, n_embd2, n_layer, dropout


class LSTMLayer(nn.Module):
    """One LSTM layer over a sequence, Graves 2013 eqs. 7-11:

    i = sigmoid(W_xi x + W_hi h + w_ci * c + b_i),  f = sigmoid(W_xf x + W_hf h + w_cf * c + b_f),
    c' = f * c + i * tanh(W_xc x + W_hc h + b_c),  o = sigmoid(W_xo x + W_ho h + w_co * c' + b_o),
    h' = o * tanh(c').

    The peepholes w_c* (the paper's diagonal cell-to-gate matrices) are vectors; torch's nn.LSTM has none.
    """

    def __init__(self, n_in: int, n_hidden: int):
        super().__init__()
        self.w_x = nn.Linear(n_in, 4 * n_hidden)  # input to i, f, cell, o stacked: every position in one product
        self.w_h = nn.Linear(n_hidden, 4 * n_hidden, bias=False)
        self.peephole = nn.Parameter(torch.zeros(3, n_hidden))  # w_ci, w_cf, w_co; zero: a plain LSTM at first
        with torch.no_grad():  # forget gate open at the start (bias 1), so the cell remembers before it learns to
            self.w_x.bias[n_hidden:2 * n_hidden].add_(1.0)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states (B, T, H) of inputs x (B, T, C) read from states h, c (B, H), and the last cell state."""
        w_ci, w_cf, w_co = self.peephole
        out = []
        for wx in self.w_x(x).unbind(1):  # (B, 4H) a position; unbind's backward is one stack, not T copies
            a_i, a_f, a_c, a_o = (wx + self.w_h(h)).chunk(4, dim=1)
            i = torch.sigmoid(a_i + w_ci * c)
            f = torch.sigmoid(a_f + w_cf * c)
            c = f * c + i * torch.tanh(a_c)
            o = torch.sigmoid(a_o + w_co * c)  # the output gate looks at the new cell
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1), c


class LSTM(RecurrentModel):
    """Embeddings (B, T, C) -> n_layer LSTM layers (B, T, H) -> logits (B, T, V).

    The hidden and cell states are carried from each character to the next, starting from learned
    states; generation carries them too, so each character costs the same.
    """

    def build(self, config: RecurrentConfig, vocab_size: int) -> None:
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        self.layers = nn.ModuleList(LSTMLayer(c.n_embd if i == 0 else c.n_embd2, c.n_embd2) for i in range(c.n_layer))
        self.start = nn.Parameter(torch.zeros(2, c.n_layer, c.n_embd2))  # each layer's h and c before any character

    def run(self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """Logits (B, T, V) of idx (B, T) read from state (h, c), each (B, n_layer, H), and the state after it."""
        h, c = state
        x, last_h, last_c = self.wte(idx), [], []
        for i, layer in enumerate(self.layers):  # a whole layer at a time: the next one's input product is one matmul
            x, c_i = layer(x, h[:, i], c[:, i])
            last_h.append(x[:, -1])
            last_c.append(c_i)
            x = self.drop(x)
        return self.head(x), (torch.stack(last_h, dim=1), torch.stack(last_c, dim=1))

    def init_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = self.start[:, None].expand(-1, n, -1, -1).unbind(0)
        return h, c  # each (n, n_layer, H)
