"""The neural bigram: the previous character's row of one weight matrix gives the logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import WindowModel


@dataclass
class NeuralBigramConfig:
    """Options of the neural bigram."""

    reg: float = 0.01
    """L2 weight on the logits table (the course's "rubber bands" pulling counts toward uniform)."""

    def problems(self) -> list[str]:
        return [] if self.reg >= 0 else [f"model.reg must not be negative, got {self.reg}"]


class NeuralBigram(WindowModel):
    """logits = one_hot(previous) @ W, trained by gradient descent; W = 0 starts uniform."""

    Config = NeuralBigramConfig
    train_defaults = {"lr": 0.3, "batch_size": 4096, "max_steps": 2000, "eval_interval": 500,
                      "weight_decay": 0.0, "schedule": "cosine"}

    def __init__(self, config: NeuralBigramConfig, vocab_size: int, max_length: int | None = None):
        super().__init__(config, vocab_size, max_length)
        self.W = nn.Parameter(torch.zeros(vocab_size, vocab_size))

    def forward(self, idx, targets=None):
        logits = self.W[idx[:, -1]]  # (B, V): a row lookup is the one-hot matmul, without the matmul
        loss = self.loss(logits, targets)
        if loss is not None and self.config.reg:
            loss = loss + self.config.reg * (self.W**2).mean()
        return logits, loss
