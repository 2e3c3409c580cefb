"""The hierarchical WaveNet of lecture 5: neighbouring characters fused pairwise, level by level."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import ModelConfigError, WindowModel, sizes_problems
from .layers import BatchNorm1d, Embedding, FlattenConsecutive, Linear, Sequential, Tanh


@dataclass
class WaveNetConfig:
    """Options of the hierarchical WaveNet."""

    block_size: int = 8
    """Characters of context; each level fuses pairs, so it must be 2**n_layer."""
    n_embd: int = 24
    """Size of each character's embedding."""
    n_embd2: int = 256
    """Width of every fusion level's output."""
    n_layer: int = 3
    """Fusion levels, each FlattenConsecutive(2) -> Linear (no bias) -> BatchNorm1d -> Tanh."""

    def problems(self) -> list[str]:
        out = sizes_problems(self)
        if not out and self.block_size != 2**self.n_layer:
            bs, nl = self.block_size, self.n_layer
            hint = f", or keep block_size {bs} with n_layer {bs.bit_length() - 1}" if bs & (bs - 1) == 0 else ""
            out.append(f"model.block_size {bs} cannot be fused by model.n_layer {nl} levels that each fuse pairs: "
                       f"block_size must be 2**n_layer, so {2**nl} with n_layer {nl}{hint}; block sizes that work: "
                       f"2, 4, 8, 16, 32, 64, ... (with n_layer 1, 2, 3, 4, 5, 6, ...)")
        return out


class WaveNet(WindowModel):
    """Embeddings (B, T, C) -> n_layer x [fuse pairs -> Linear -> BatchNorm1d -> Tanh] -> (B, H) -> logits (B, V)."""

    Config = WaveNetConfig
    # weight decay does not shrink what a matrix before a batch norm computes, so it takes a strong one
    # (embeddings and output layer) to keep this net from overfitting names.txt within a few epochs
    train_defaults = {"lr": 3e-3, "batch_size": 512, "max_steps": 6000, "eval_interval": 1000,
                      "weight_decay": 0.6, "schedule": "cosine", "warmup_steps": 200}

    def __init__(self, config: WaveNetConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        layers = []
        for i in range(c.n_layer):
            fan_in = 2 * (c.n_embd if i == 0 else c.n_embd2)
            # (B, T, C) -> (B, T/2, 2C) -> (B, T/2, H); the last level leaves (B, H)
            layers += [FlattenConsecutive(2), Linear(fan_in, c.n_embd2, bias=False, gain=5 / 3),
                       BatchNorm1d(c.n_embd2), Tanh()]
        self.hidden = Sequential(*layers)
        self.head = Linear(c.n_embd2, vocab_size)
        with torch.no_grad():  # start unconfident: a first loss near ln(V), not a hockey stick
            self.head.weight.mul_(0.1)

    def forward(self, idx, targets=None):
        emb = self.wte(idx)  # (B, T, C)
        h = self.hidden(emb)  # (B, H)
        logits = self.head(h)  # (B, V)
        return logits, self.loss(logits, targets)
