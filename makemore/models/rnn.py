"""The recurrent net of Elman 1990 as a language model (Mikolov et al. 2010): h_t = tanh(W x_t + U h_{t-1} + b)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import ModelConfigError, SequenceModel, dropout_problems, sizes_problems
from .layers import Embedding


@dataclass
class RNNConfig:
    """Options of the recurrent net."""

    n_embd: int = 64
    """Size of each character's embedding."""
    n_embd2: int = 256
    """Size of the hidden state of each layer."""
    n_layer: int = 1
    """Stacked recurrent layers, each reading the hidden states of the one below."""
    dropout: float = 0.0
    """Dropout on each layer's output (between layers and before the output layer)."""

    def problems(self) -> list[str]:
        return sizes_problems(self) + dropout_problems(self)


class RNN(SequenceModel):
    """Embeddings (B, T, C) -> n_layer tanh recurrences (B, T, H) -> logits (B, T, V).

    The hidden state is carried from each character to the next, starting from a learned state
    (as makemore.py's `start`); generation carries it too, so each character costs the same.
    """

    Config = RNNConfig
    train_defaults = {"lr": 5e-3, "batch_size": 128, "max_steps": 3000, "eval_interval": 500,
                      "weight_decay": 0.01, "schedule": "cosine", "warmup_steps": 200, "grad_clip": 1.0}

    def __init__(self, config: RNNConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        # torch's fused loop computes exactly Elman's recurrence, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),
        # position by position and layer by layer (tests/test_sequence_models.py checks it against the equation)
        self.rnn = nn.RNN(c.n_embd, c.n_embd2, c.n_layer, nonlinearity="tanh", batch_first=True,
                          dropout=c.dropout if c.n_layer > 1 else 0.0)
        self.start = nn.Parameter(torch.zeros(c.n_layer, c.n_embd2))  # the state before the first character
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.n_embd2, vocab_size)
        with torch.no_grad():  # start unconfident: a first loss near ln(V), not a hockey stick
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def run(self, idx: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) of idx (B, T) read from state (B, n_layer, H), and the state after it."""
        # nn.RNN wants the state layer-first, (n_layer, B, H); it is kept batch-first so keep() can drop rows
        out, h = self.rnn(self.wte(idx), state.transpose(0, 1).contiguous())
        return self.head(self.drop(out)), h.transpose(0, 1)

    def forward(self, idx, targets=None):
        logits, _ = self.run(idx, self.init_state(idx.size(0)))
        return logits, self.loss(logits, targets)

    def init_state(self, n: int) -> torch.Tensor:
        return self.start.expand(n, -1, -1)  # (n, n_layer, H)

    def step(self, tokens, state):
        logits, state = self.run(tokens[:, None], state)
        return logits[:, 0], state
