"""The one interface every model implements, and what the spine needs to know about a model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class ModelConfigError(ValueError):
    """A model option that cannot work (e.g. a context the architecture cannot fuse)."""


def sizes_problems(config) -> list[str]:
    """Every size option (an int field) of a model config below 1, as config problems."""
    return [f"model.{k} must be at least 1, got {v}" for k, v in vars(config).items()
            if isinstance(v, int) and not isinstance(v, bool) and v < 1]


@dataclass
class NoOptions:
    """Config of a model without options."""


class Model(nn.Module):
    """Base class: forward(idx, targets=None) -> (logits, loss) for every model.

    A window model (kind "window") reads idx (B, block_size), the previous characters, and
    returns logits (B, V) for the next one. A sequence model (kind "sequence") reads idx (B, T)
    and returns logits (B, T, V), one prediction a position, padding targets marked -1.
    """

    Config: ClassVar[type] = NoOptions
    kind: ClassVar[str] = "window"
    trainable: ClassVar[bool] = True  # False: fitted by one counting pass (fit), no optimizer
    train_defaults: ClassVar[dict] = {}  # training settings that suit this model, under any config

    def __init__(self, config, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size

    @property
    def block_size(self) -> int:
        """Characters of context a window model reads."""
        return getattr(self.config, "block_size", 1)

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.parameters(), self.buffers())).device

    def loss(self, logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
        """Mean cross-entropy over real targets (padding, -1, is skipped)."""
        if targets is None:
            return None
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    def fit(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        """Count models: fit from every (context (M, block_size), target (M,)) pair of the train split."""
        raise NotImplementedError

    def num_params(self) -> int:
        """Learned numbers: parameters, or for a count model its table of probabilities."""
        return sum(p.numel() for p in self.parameters())
