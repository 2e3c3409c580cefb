"""The hierarchical WaveNet of lecture 5: neighbouring characters fused pairwise, level by level."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import ModelConfigError, WindowModel, keep_rows, shrink_head, sizes_problems
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
    """Embeddings (B, T, C) -> n_layer x [fuse pairs -> Linear -> BatchNorm1d -> Tanh] -> (B, H) -> logits (B, V).

    The fusion is a dilated convolution: level i's node ending at position p reads level i-1's nodes
    at p - 2**i and p (level -1: the embeddings). So generation keeps, per level, a queue of its last
    2**i inputs and computes one new node per level per character instead of re-reading the window.
    """

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
        shrink_head(self.head)

    def forward(self, idx, targets=None):
        emb = self.wte(idx)  # (B, T, C)
        h = self.hidden(emb)  # (B, H)
        logits = self.head(h)  # (B, V)
        return logits, self.loss(logits, targets)

    def affine_levels(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each level as (W, scale, shift): eval-mode BatchNorm1d(x @ W) is (x @ W) * scale + shift."""
        out = []
        for lin, bn in zip(self.hidden.layers[1::4], self.hidden.layers[2::4]):
            scale = bn.gain * torch.rsqrt(bn.running_var + bn.eps)  # (H,)
            out.append((lin.weight, scale, bn.bias - bn.running_mean * scale))
        return out

    def init_state(self, n: int):
        # generation reads one word at a time, so batch norm uses its running statistics (eval mode) here
        levels = self.affine_levels()
        # before the word the window holds boundary tokens, so every level's earlier nodes are one constant
        node = self.wte.weight[:1] + self.label_vectors()  # (1, C), or (n, C) with each word's label
        queues = []
        for i, (w, scale, shift) in enumerate(levels):
            queues.append([node.expand(n, -1)] * 2**i)  # level i's inputs at p - 2**i .. p - 1, oldest first
            node = torch.tanh(torch.addcmul(shift, torch.cat([node, node], dim=1) @ w, scale))
        return {"levels": levels, "queues": queues}

    def step(self, tokens, state):
        # one word a call is bound by the number of tensor ops, not by arithmetic: fused ops where they exist
        x = self.wte.weight.index_select(0, tokens) + self.label_vectors()  # (n, C)
        queues = []
        for (w, scale, shift), queue in zip(state["levels"], state["queues"]):
            queues.append(queue[1:] + [x])  # a list of (n, C) tensors: moving the queue costs no tensor op
            x = torch.tanh(torch.addcmul(shift, torch.cat([queue[0], x], dim=1) @ w, scale))  # the node ending here
        logits = torch.addmm(self.head.bias, x, self.head.weight)  # self.head(x) in one op
        return logits, {"levels": state["levels"], "queues": queues}

    def keep(self, state, rows):
        return {"levels": state["levels"], "queues": keep_rows(state["queues"], rows)}
