"""makemore.py's causal bag of words: each position averages the embeddings up to it, then an MLP, then logits."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .base import ModelConfigError, SequenceModel, shrink_head, sizes_problems
from .layers import Embedding


@dataclass
class BoWConfig:
    """Options of the bag of words."""

    block_size: int | None = None
    """Positions the model can read (the start token included); None fits the data: its longest item + 1."""
    n_embd: int = 64
    """Size of each character's (and each position's) embedding."""
    n_embd2: int = 256
    """Width of the tanh MLP after the average."""

    def problems(self) -> list[str]:
        return sizes_problems(self)


class BoW(SequenceModel):
    """Token + position embeddings x (B, T, C) -> x + causal mean of x -> x + MLP(x) -> logits (B, T, V).

    The mean at position t is over positions 0..t (a lower-triangular averaging matrix, the
    "mathematical trick" of lecture 7): a bag, so the order of the earlier characters reaches the
    prediction only through their position embeddings.
    """

    Config = BoWConfig
    train_defaults = {"lr": 3e-3, "batch_size": 128, "max_steps": 3000, "eval_interval": 500,
                      "weight_decay": 0.01, "schedule": "cosine", "warmup_steps": 200}

    def __init__(self, config: BoWConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        block_size = config.block_size
        if not problems and block_size is None:
            if max_length is None:
                problems.append("model.block_size must be set when the longest item is not known")
            block_size = None if max_length is None else max_length + 1
        elif not problems and max_length is not None and block_size < max_length + 1:
            problems.append(f"model.block_size {block_size} is too short for the longest item ({max_length} "
                            f"characters and the start token): use at least {max_length + 1}, or leave it unset")
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(replace(config, block_size=block_size), vocab_size, max_length)
        c = self.config
        self.wte = Embedding(vocab_size, c.n_embd)
        self.wpe = Embedding(block_size, c.n_embd)
        # row t of the averaging matrix is 1/(t+1) over positions 0..t: a causal mean in one product
        tril = torch.tril(torch.ones(block_size, block_size))
        self.register_buffer("average", tril / tril.sum(1, keepdim=True), persistent=False)
        self.fc = nn.Linear(c.n_embd, c.n_embd2)
        self.proj = nn.Linear(c.n_embd2, c.n_embd)
        self.head = nn.Linear(c.n_embd, vocab_size)
        shrink_head(self.head)

    @property
    def context_limit(self) -> int:
        return self.config.block_size

    def mix(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Logits from each position's own embedding x and the mean of the embeddings up to it (..., C)."""
        x = x + mean  # makemore.py's residual block: the bag added to the position's own embedding,
        x = x + self.proj(torch.tanh(self.fc(x)))  # then an MLP, also residual
        return self.head(x)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        if t > self.config.block_size:
            raise ValueError(f"sequence of {t} positions, but this model reads at most {self.config.block_size}")
        x = self.wte(idx) + self.wpe.weight[:t]  # (B, T, C)
        logits = self.mix(x, self.average[:t, :t] @ x)  # (T, T) @ (B, T, C) -> (B, T, C)
        return logits, self.loss(logits, targets)

    def init_state(self, n: int) -> tuple[torch.Tensor, int]:
        # the running sum of the embeddings read so far (n, C), and how many: constant work a character
        return torch.zeros(n, self.config.n_embd, device=self.device), 0

    def step(self, tokens, state):
        total, t = state
        x = self.wte(tokens) + self.wpe.weight[t]  # (n, C)
        total = total + x
        return self.mix(x, total / (t + 1)), (total, t + 1)
