"""The gated recurrent unit of Cho et al. 2014, its equations written out, as a character language model."""

from __future__ import annotations

import torch
from torch import nn

from .base import RecurrentConfig, RecurrentModel
from .layers import Embedding

GRUConfig = RecurrentConfig  # n_embd, n_embd2, n_layer, dropout


class GRULayer(nn.Module):
    """One GRU layer over a sequence, Cho et al. 2014 eqs. 5-8 (with biases):

    r = sigmoid(W_r x + U_r h),  z = sigmoid(W_z x + U_z h),  h~ = tanh(W x + U (r * h)),
    h' = z * h + (1 - z) * h~.

    The reset gate scales h before U multiplies it, as in the paper (torch's nn.GRU scales U h instead).
    """

    def __init__(self, n_in: int, n_hidden: int):
        super().__init__()
        self.w = nn.Linear(n_in, 3 * n_hidden)  # W_r, W_z, W stacked: every position's input in one product
        self.u_rz = nn.Linear(n_hidden, 2 * n_hidden, bias=False)  # U_r, U_z
        self.u = nn.Linear(n_hidden, n_hidden, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, H) of inputs x (B, T, C) read from state h (B, H); the last one is the new state."""
        out = []
        for wx in self.w(x).unbind(1):  # (B, 3H) a position; unbind's backward is one stack, not T copies
            wx_rz, wx_h = wx.split([2 * h.size(1), h.size(1)], dim=1)
            r, z = torch.sigmoid(wx_rz + self.u_rz(h)).chunk(2, dim=1)
            candidate = torch.tanh(wx_h + self.u(r * h))
            h = z * h + (1 - z) * candidate
            out.append(h)
        return torch.stack(out, dim=1)


class GRU(RecurrentModel):
    """Embeddings (B, T, C) -> n_layer GRU layers (B, T, H) -> logits (B, T, V).

    The hidden state is carried from each character to the next, starting from a learned state
    (as makemore.py's `start`); generation carries it too, so each character costs the same.
    """

    def build(self, config: RecurrentConfig, vocab_size: int) -> None:
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        self.layers = nn.ModuleList(GRULayer(c.n_embd if i == 0 else c.n_embd2, c.n_embd2) for i in range(c.n_layer))
        self.start = nn.Parameter(torch.zeros(c.n_layer, c.n_embd2))  # each layer's state before the first character

    def run(self, idx: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) of idx (B, T) read from state (B, n_layer, H), and the state after it."""
        x, last = self.wte(idx), []
        for i, layer in enumerate(self.layers):  # a whole layer at a time: the next one's input product is one matmul
            x = layer(x, state[:, i])
            last.append(x[:, -1])
            x = self.drop(x)
        return self.head(x), torch.stack(last, dim=1)

    def init_state(self, n: int) -> torch.Tensor:
        return self.start.expand(n, -1, -1)  # (n, n_layer, H)
