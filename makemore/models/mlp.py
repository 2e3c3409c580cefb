"""The MLP of Bengio et al. 2003: embed the previous block_size characters, one tanh layer, logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .base import WindowModel, sizes_problems
from .layers import Embedding, ManualCrossEntropy, ManualLinear, ManualTanh


@dataclass
class MLPConfig:
    """Options of the MLP."""

    block_size: int = 8
    """Characters of context."""
    n_embd: int = 24
    """Size of each character's embedding."""
    n_embd2: int = 512
    """Width of the hidden tanh layer."""
    backward: Literal["autograd", "manual"] = "autograd"
    """Gradients by torch's autograd, or by the hand-derived formulas of layers.py's Manual* functions."""

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
        self.wte = Embedding(vocab_size, c.n_embd, manual=c.backward == "manual")
        self.hidden = nn.Linear(c.block_size * c.n_embd, c.n_embd2)
        self.head = nn.Linear(c.n_embd2, vocab_size)
        with torch.no_grad():  # start unconfident: a first loss near ln(V), not a hockey stick
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, idx, targets=None):
        emb = self.wte(idx)  # (B, T, C)
        if self.config.backward == "manual":  # the same math; torch.nn.Linear keeps its weight as (out, in)
            h = ManualTanh.apply(ManualLinear.apply(emb.flatten(1), self.hidden.weight.T, self.hidden.bias))
            logits = ManualLinear.apply(h, self.head.weight.T, self.head.bias)
            return logits, None if targets is None else ManualCrossEntropy.apply(logits, targets)
        h = torch.tanh(self.hidden(emb.flatten(1)))  # (B, T*C) -> (B, H)
        logits = self.head(h)  # (B, V)
        return logits, self.loss(logits, targets)
