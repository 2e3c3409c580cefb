"""The count bigram: next-character probabilities from smoothed pair counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import WindowModel


@dataclass
class BigramConfig:
    """Options of the count bigram."""

    smoothing: float = 1.0
    """Add-k smoothing: k is added to every pair count before normalizing (0 = none; a character never seen
    before another in training then predicts uniformly)."""

    def problems(self) -> list[str]:
        return [] if self.smoothing >= 0 else [f"model.smoothing must not be negative, got {self.smoothing}"]


class Bigram(WindowModel):
    """P(next | previous) from add-k smoothed pair counts; fitted by one counting pass."""

    Config = BigramConfig
    trainable = False

    def __init__(self, config: BigramConfig, vocab_size: int, max_length: int | None = None):
        super().__init__(config, vocab_size, max_length)
        # log-probabilities, uniform until fitted; a Parameter (frozen) so checkpoints and counts see it
        self.logprobs = nn.Parameter(torch.full((vocab_size, vocab_size), -torch.log(torch.tensor(vocab_size))),
                                     requires_grad=False)

    def fit(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        v = self.vocab_size
        counts = torch.bincount(contexts[:, -1] * v + targets, minlength=v * v).view(v, v).double()
        counts += self.config.smoothing
        # a character train never has before another (with smoothing 0: a row of zeros) predicts uniformly
        counts[counts.sum(1) == 0] = 1.0
        self.logprobs.copy_((counts / counts.sum(1, keepdim=True)).log().float())

    def forward(self, idx, targets=None):
        logits = self.logprobs[idx[:, -1]]  # (B, V)
        return logits, self.loss(logits, targets)
