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

    label_weight: float = 0.7
    """Labelled data: P(next | previous, label) is this much of the label's own counts, the rest the pooled ones."""

    def problems(self) -> list[str]:
        out = [] if self.smoothing >= 0 else [f"model.smoothing must not be negative, got {self.smoothing}"]
        return out + ([] if 0 <= self.label_weight <= 1 else
                      [f"model.label_weight must be in [0, 1], got {self.label_weight}"])


class Bigram(WindowModel):
    """P(next | previous) from add-k smoothed pair counts; fitted by one counting pass."""

    Config = BigramConfig
    trainable = False

    def __init__(self, config: BigramConfig, vocab_size: int, max_length: int | None = None):
        super().__init__(config, vocab_size, max_length)
        # log-probabilities, uniform until fitted; a Parameter (frozen) so checkpoints and counts see it
        self.logprobs = nn.Parameter(torch.full((vocab_size, vocab_size), -torch.log(torch.tensor(vocab_size))),
                                     requires_grad=False)

    def table(self, contexts: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """P(next | previous) (V, V) from the pairs' smoothed counts."""
        v = self.vocab_size
        counts = torch.bincount(contexts[:, -1] * v + targets, minlength=v * v).view(v, v).double()
        counts += self.config.smoothing
        # a character train never has before another (with smoothing 0: a row of zeros) predicts uniformly
        counts[counts.sum(1) == 0] = 1.0
        return counts / counts.sum(1, keepdim=True)

    def fit(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        pooled = self.table(contexts, targets)
        self.logprobs.copy_(pooled.log().float())
        w = self.config.label_weight
        for label in range(len(self.labels)):
            rows = self.label_ids == label
            own = self.table(contexts[rows], targets[rows])
            self.label_logprobs[label] = (w * own + (1 - w) * pooled).log().float()

    def attach_labels(self, labels: list[str]) -> None:
        """A table a label: its own counts blended with the pooled ones (config.label_weight)."""
        v = self.vocab_size
        self.label_logprobs = nn.Parameter(self.logprobs.detach().expand(len(labels), v, v).clone(),
                                           requires_grad=False)
        self.labels = list(labels)

    def forward(self, idx, targets=None):
        if self.labels:
            logits = self.label_logprobs[self.label_ids, idx[:, -1]]  # (B, V)
        else:
            logits = self.logprobs[idx[:, -1]]  # (B, V)
        return logits, self.loss(logits, targets)
