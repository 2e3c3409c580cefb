"""The MLP of Bengio et al. 2003: embed the previous block_size characters, one tanh layer, logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import WindowModel, sizes_problems
from .layers import Embedding


@dataclass
class MLPConfig:
    """Options of the MLP."""

    block_size: int = 8
    """Characters of context."""
    n_embd: int = 24
    """Size of each character's embedding."""
    n_embd2: int = 512
    """Width of the hidden tanh layer."""

    def problems(self) -> list[str]:
        return sizes_problems(self)


class MLP(WindowModel):
    """Embeddings (B, T, C) -> concatenated (B, T*C) -> tanh hidden (B, H) -> logits (B, V)."""

    Config = MLPConfig
    train_defaults = {"lr": 3e-3, "batch_size": 512, "max_steps": 12_000, "eval_interval": 2000,
                      "weight_decay": 0.1, "schedule": "cosine", "warmup_steps": 200}

    def __init__(self, config: MLPConfig, vocab_size: int, max_length: int | None = None):
        super().__init__(config, vocab_size, max_length)
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        self.hidden = nn.Linear(c.block_size * c.n_embd, c.n_embd2)
        self.head = nn.Linear(c.n_embd2, vocab_size)
        with torch.no_grad():  # start unconfident: a first loss near ln(V), not a hockey stick
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, idx, targets=None):
        emb = self.wte(idx)  # (B, T, C)
        h = torch.tanh(self.hidden(emb.flatten(1)))  # (B, T*C) -> (B, H)
        logits = self.head(h)  # (B, V)
        return logits, self.loss(logits, targets)
