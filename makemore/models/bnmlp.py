"""The MLP made deep with batch normalization (lecture 4), built from the course's own layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import WindowModel, shrink_head, sizes_problems
from .layers import BatchNorm1d, Embedding, Linear, ManualCrossEntropy, Sequential, Tanh


@dataclass
class BNMLPConfig:
    """Options of the batch-norm MLP."""

    block_size: int = 8
    """Characters of context."""
    n_embd: int = 24
    """Size of each character's embedding."""
    n_embd2: int = 256
    """Width of each hidden layer."""
    n_layer: int = 3
    """Hidden layers, each Linear (no bias) -> BatchNorm1d -> Tanh."""
    backward: Literal["autograd", "manual"] = "autograd"
    """Gradients by torch's autograd, or by the hand-derived formulas of layers.py's Manual* functions."""

    def problems(self) -> list[str]:
        return sizes_problems(self)


class BNMLP(WindowModel):
    """Embeddings (B, T, C) -> flat (B, T*C) -> n_layer x [Linear -> BatchNorm1d -> Tanh] (B, H) -> logits (B, V)."""

    Config = BNMLPConfig
    # weight decay does not shrink what a matrix before a batch norm computes, so it takes a strong one
    # (embeddings and output layer) to keep this net from overfitting names.txt within a few epochs
    train_defaults = {"lr": 3e-3, "batch_size": 512, "max_steps": 6000, "eval_interval": 1000,
                      "weight_decay": 1.5, "schedule": "cosine", "warmup_steps": 200}

    def __init__(self, config: BNMLPConfig, vocab_size: int, max_length: int | None = None):
        super().__init__(config, vocab_size, max_length)
        c = config
        manual = c.backward == "manual"
        self.wte = Embedding(vocab_size, c.n_embd, manual=manual)
        layers = []
        for i in range(c.n_layer):
            fan_in = c.block_size * c.n_embd if i == 0 else c.n_embd2
            # no bias: the batch norm right after subtracts the mean, so a bias would do nothing
            layers += [Linear(fan_in, c.n_embd2, bias=False, gain=5 / 3, manual=manual),
                       BatchNorm1d(c.n_embd2, manual=manual), Tanh(manual=manual)]
        self.hidden = Sequential(*layers)
        self.head = Linear(c.n_embd2, vocab_size, manual=manual)
        shrink_head(self.head)

    def forward(self, idx, targets=None):
        emb = self.wte(idx)  # (B, T, C)
        h = self.hidden(emb.flatten(1))  # (B, T*C) -> (B, H)
        logits = self.head(h)  # (B, V)
        if self.config.backward == "manual" and targets is not None:
            return logits, ManualCrossEntropy.apply(logits, targets)
        return logits, self.loss(logits, targets)
