"""The recurrent net of Elman 1990 as a language model (Mikolov et al. 2010): h_t = tanh(W x_t + U h_{t-1} + b)."""

from __future__ import annotations

import torch
from torch import nn

from .base import RecurrentConfig, RecurrentModel
from .layers import Embedding

RNNConfig = RecurrentConfig  # n_embd, n_embd2, n_layer, dropout


class RNN(RecurrentModel):
    """Embeddings (B, T, C) -> n_layer tanh recurrences (B, T, H) -> logits (B, T, V).

    The hidden state is carried from each character to the next, starting from a learned state
    (as makemore.py's `start`); generation carries it too, so each character costs the same.
    """

    def build(self, config: RecurrentConfig, vocab_size: int) -> None:
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        # torch's fused loop computes exactly Elman's recurrence, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),
        # position by position and layer by layer (tests/test_sequence_models.py checks it against the equation)
        self.rnn = nn.RNN(c.n_embd, c.n_embd2, c.n_layer, nonlinearity="tanh", batch_first=True,
                          dropout=c.dropout if c.n_layer > 1 else 0.0)
        self.start = nn.Parameter(torch.zeros(c.n_layer, c.n_embd2))  # the state before the first character

    def run(self, idx: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) of idx (B, T) read from state (B, n_layer, H), and the state after it."""
        # nn.RNN wants the state layer-first, (n_layer, B, H); it is kept batch-first so keep() can drop rows
        out, h = self.rnn(self.wte(idx), state.transpose(0, 1).contiguous())
        return self.head(self.drop(out)), h.transpose(0, 1)

    def init_state(self, n: int) -> torch.Tensor:
        return self.start.expand(n, -1, -1)  # (n, n_layer, H)
