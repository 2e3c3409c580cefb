"""The neural bigram: the previous character's row of one weight matrix gives the logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..micrograd.nn import cross_entropy
from ..micrograd.torch_bridge import scalar_loss
from .base import ModelConfigError, WindowModel


@dataclass
class NeuralBigramConfig:
    """Options of the neural bigram."""

    reg: float = 0.01
    """L2 weight on the logits table (the course's "rubber bands" pulling counts toward uniform)."""
    engine: Literal["torch", "micrograd"] = "torch"
    """Training loss and gradient by torch tensors, or by the course's scalar engine (makemore.micrograd), same
    numbers. micrograd is slow by nature (a graph of scalar Values for every example of every batch, about a
    hundred nodes each): use small batches, e.g. --batch-size 32. Evaluation and sampling always use torch."""

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

    def attach_labels(self, labels: list[str]) -> None:
        """A table a label, zero at first, added to W's row: each label's own bigram correction."""
        if self.config.engine == "micrograd":
            raise ModelConfigError("the micrograd engine does not learn labels: use --engine torch with --labeled")
        self.label_W = nn.Parameter(torch.zeros(len(labels), self.vocab_size, self.vocab_size, device=self.W.device))
        self.labels = list(labels)

    def forward(self, idx, targets=None):
        logits = self.W[idx[:, -1]]  # (B, V): a row lookup is the one-hot matmul, without the matmul
        if self.labels:
            logits = logits + self.label_W[self.label_ids, idx[:, -1]]
        if targets is not None and self.config.engine == "micrograd":
            return logits, scalar_loss(self.scalar_loss_fn(idx[:, -1].tolist(), targets.tolist()), self.W)
        loss = self.loss(logits, targets)
        if loss is not None and self.config.reg:
            loss = loss + self.config.reg * (self.W**2).mean()
        return logits, loss

    def scalar_loss_fn(self, prev: list[int], targets: list[int]):
        """The same loss as forward's on the scalar engine: a function of W's rows of Values."""
        reg = self.config.reg

        def loss(W):
            nll = sum(cross_entropy(W[p], t) for p, t in zip(prev, targets)) / len(targets)
            if reg:
                nll = nll + reg * sum(w**2 for row in W for w in row) / (len(W) * len(W[0]))
            return nll
        return loss
