"""The MLP of Bengio et al. 2003: embed the previous block_size characters, one tanh layer, logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .base import WindowModel, shrink_head, sizes_problems
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
        shrink_head(self.head)

    def forward(self, idx, targets=None):
        if self.config.backward == "autograd" and self.use_tables(idx.size(0)):
            h = torch.tanh(self.hidden_from_tables(idx))  # the same numbers as below, fewer multiply-adds
            logits = self.head(h)
            return logits, self.loss(logits, targets)
        emb = self.wte(idx)  # (B, T, C)
        if self.config.backward == "manual":  # the same math; torch.nn.Linear keeps its weight as (out, in)
            h = ManualTanh.apply(ManualLinear.apply(emb.flatten(1), self.hidden.weight.T, self.hidden.bias))
            logits = ManualLinear.apply(h, self.head.weight.T, self.head.bias)
            return logits, None if targets is None else ManualCrossEntropy.apply(logits, targets)
        h = torch.tanh(self.hidden(emb.flatten(1)))  # (B, T*C) -> (B, H)
        logits = self.head(h)  # (B, V)
        return logits, self.loss(logits, targets)

    def use_tables(self, batch: int) -> bool:
        """Whether the per-position tables cost fewer multiply-adds than the plain hidden layer.

        Tables: V*C*T*H to build, B*T*V*H to read by one-hot matmul; plain: B*T*C*H. Diagnostics
        watch the layers through forward hooks, and labels reach the embedding through one: only the plain
        path calls them.
        """
        v, c = self.vocab_size, self.config.n_embd
        watched = self.wte._forward_hooks or self.hidden._forward_hooks
        return v * (c + batch) < batch * c and not watched

    def position_tables(self) -> torch.Tensor:
        """(T*V, H): row t*V + v is what character v at position t adds to the hidden layer."""
        v, c = self.wte.weight.shape
        t, h = self.config.block_size, self.config.n_embd2
        # hidden.weight is (H, T*C): row h*T + t of its (H*T, C) view multiplies the embedding at position t;
        # the transpose is a view, which matmuls and their gradients read without a copy
        return (self.hidden.weight.view(h * t, c) @ self.wte.weight.t()).view(h, t * v).t()

    def hidden_from_tables(self, idx: torch.Tensor) -> torch.Tensor:
        """The hidden layer's input (B, H), as the sum over positions t of table t's row for idx[:, t].

        concat_t(E[x_t]) @ W.T = sum_t E[x_t] @ W_t.T = sum_t (E @ W_t.T)[x_t]: matrix products
        associate, so this is the plain layer's math with the (V, C) @ (C, H) products done once
        per step instead of once per example. The rows are summed by a one-hot matmul, whose
        backward is a matmul too (scatter-adding rows is several times slower on the CPU).
        """
        (b, t), v = idx.shape, self.wte.weight.size(0)
        offsets = torch.arange(0, t * v, v, device=idx.device)  # row of (position, character) in the tables
        onehot = self.wte.weight.new_zeros(b, t * v).scatter_(1, idx + offsets, 1.0)
        return torch.addmm(self.hidden.bias, onehot, self.position_tables())
