"""A GPT (Radford et al. 2018, as in makemore.py and nanoGPT): pre-norm blocks of causal self-attention and an MLP."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelConfigError, SequenceModel, dropout_problems, sizes_problems


@dataclass
class TransformerConfig:
    """Options of the Transformer."""

    block_size: int | None = None
    """Positions the model can read (its position table); None: the longest item plus one."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads a block; must divide n_embd."""
    n_embd: int = 64
    """Width of the residual stream (and of each character's embedding)."""
    dropout: float = 0.0
    """Dropout on attention weights, on each block's outputs and on the embeddings (0 turns it off)."""

    def problems(self) -> list[str]:
        out = sizes_problems(self) + dropout_problems(self)
        if not out and self.n_embd % self.n_head:
            divisors = [h for h in range(1, self.n_embd + 1) if self.n_embd % h == 0]
            out.append(f"model.n_head {self.n_head} does not divide model.n_embd {self.n_embd}: use one of "
                       f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''}")
        return out


class SelfAttention(nn.Module):
    """Causal multi-head self-attention; with a cache it reads one new position against the cached ones."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.n_head, self.dropout = c.n_head, c.dropout
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.proj = nn.Linear(c.n_embd, c.n_embd)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        if cache is not None:  # generation: the new position attends to every earlier one, so no mask is needed
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        if cache is not None and t == 1 and b > 1:
            # one new position of many rows against the cache: two batched matmuls beat the fused kernel's CPU
            # path for a single query (the sampling figures are in BENCHMARKS.md); for one row they do not
            y = ((q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5).softmax(dim=-1) @ v
        else:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=cache is None)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(b, t, c)), (k, v)


class Block(nn.Module):
    """x + attention(norm(x)), then x + MLP(norm(x)): the pre-norm residual block."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.attn = SelfAttention(c)
        self.fc, self.out = nn.Linear(c.n_embd, 4 * c.n_embd), nn.Linear(4 * c.n_embd, c.n_embd)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, cache=None):
        a, cache = self.attn(self.ln1(x), cache)
        x = x + self.drop(a)
        x = x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))
        return x, cache


class Transformer(SequenceModel):
    """Token + position embeddings (B, T, C) -> n_layer blocks -> layer norm -> logits (B, T, V)."""

    Config = TransformerConfig
    train_defaults = {"lr": 2e-3, "batch_size": 128, "max_steps": 5000, "eval_interval": 500,
                      "weight_decay": 0.1, "betas": (0.9, 0.99), "schedule": "cosine", "warmup_steps": 200,
                      "grad_clip": 1.0}

    def __init__(self, config: TransformerConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        need = None if max_length is None else max_length + 1
        if config.block_size is not None and need is not None and config.block_size < need:
            problems.append(f"model.block_size {config.block_size} is shorter than the longest item plus one: "
                            f"use at least {need}, or null to fit the data")
        if config.block_size is None and need is None:
            problems.append("model.block_size must be set when the data is not known")
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        c = config
        self.block_size = c.block_size or need
        self.wte = nn.Embedding(vocab_size, c.n_embd)
        self.wpe = nn.Embedding(self.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, vocab_size, bias=False)
        for name, p in self.named_parameters():  # GPT-2's init: small normal weights, residual outputs smaller still
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * c.n_layer) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    @property
    def context_limit(self) -> int:
        return self.block_size

    def forward(self, idx, targets=None):
        t = idx.size(1)
        if t > self.block_size:
            raise ValueError(f"{t} positions given, but the position table has {self.block_size}")
        x = self.drop(self.wte(idx) + self.wpe.weight[:t])  # (B, T, C)
        for block in self.blocks:
            x, _ = block(x)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        return logits, self.loss(logits, targets)

    def init_state(self, n: int):
        empty = torch.zeros(n, self.config.n_head, 0, self.config.n_embd // self.config.n_head, device=self.device)
        return [(empty, empty) for _ in self.blocks]  # a key/value cache a block, (n, nh, T, hs) each

    def step(self, tokens, state):
        t = state[0][0].size(2)  # positions read so far
        x = self.wte(tokens[:, None]) + self.wpe.weight[t]  # (n, 1, C)
        new = []
        for block, cache in zip(self.blocks, state):
            x, cache = block(x, cache)
            new.append(cache)
        return self.head(self.ln_f(x[:, 0])), new
