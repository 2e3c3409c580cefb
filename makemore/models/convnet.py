"""The WaveNet of van den Oord et al. 2016: dilated causal convolutions over the whole word at once.

Every layer is a kernel-2 convolution reading positions t - d and t (dilation d = 1, 2, 4, ...), so one
pass predicts every position and a stack of n_layer layers sees 2**n_layer positions. Generation keeps,
per layer, its last d inputs in a queue (Paine et al. 2016, "Fast WaveNet Generation"): a new character
costs one kernel-2 step per layer instead of a re-run of the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import ModelConfigError, SequenceModel, dropout_problems, shrink_head, sizes_problems
from .layers import Embedding, Linear

MAX_LAYER = 10  # dilation 512: far beyond any item, and the generation queues hold every dilation's inputs


@dataclass
class ConvNetConfig:
    """Options of the dilated-convolution WaveNet."""

    n_embd: int = 24
    """Size of each character's embedding."""
    n_embd2: int = 128
    """Residual channels (also the width of the skip connections and of the output layers)."""
    n_layer: int = 4
    """Dilated layers per stack, with dilations 1, 2, ..., 2**(n_layer-1)."""
    n_stack: int = 1
    """Stacks of n_layer layers; the receptive field is n_stack * (2**n_layer - 1) + 1 positions."""
    dropout: float = 0.2
    """Dropout probability on each layer's gated activations (0 turns it off)."""

    def problems(self) -> list[str]:
        out = sizes_problems(self) + dropout_problems(self)
        if self.n_layer > MAX_LAYER:
            out.append(f"model.n_layer must be at most {MAX_LAYER} (dilations up to {2 ** (MAX_LAYER - 1)}), got "
                       f"{self.n_layer}; for a wider receptive field raise model.n_stack")
        return out

    @property
    def receptive_field(self) -> int:
        """Positions each prediction reads: its own and the n_stack * (2**n_layer - 1) before it."""
        return self.n_stack * (2**self.n_layer - 1) + 1


class ResidualBlock(nn.Module):
    """Figure 4 of the paper: dilated kernel-2 conv -> tanh * sigmoid -> 1x1 to a residual and a skip."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.dilation = dilation
        self.conv = Linear(2 * channels, 2 * channels)  # both taps [x(t-d), x(t)] -> filter and gate
        self.out = Linear(channels, 2 * channels)  # 1x1: residual and skip
        self.drop = nn.Dropout(dropout)

    def forward(self, past: torch.Tensor, now: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs at t - dilation and at t, (..., C) each: the next layer's input and this layer's skip."""
        f, g = self.conv(torch.cat([past, now], dim=-1)).chunk(2, dim=-1)
        h = self.drop(torch.tanh(f) * torch.sigmoid(g))  # the gated activation unit
        res, skip = self.out(h).chunk(2, dim=-1)
        return now + res, skip

    def extra_repr(self) -> str:
        return f"dilation={self.dilation}"


def shifted(x: torch.Tensor, d: int) -> torch.Tensor:
    """x (B, T, C) delayed by d positions, zeros before the start: the causal convolution's left tap."""
    b, t, c = x.shape
    if d >= t:
        return x.new_zeros(b, t, c)
    return torch.cat([x.new_zeros(b, d, c), x[:, : t - d]], dim=1)


class ConvNet(SequenceModel):
    """Embeddings -> 1x1 to residual channels -> dilated gated blocks -> relu(sum of skips) -> 1x1 -> relu -> 1x1."""

    Config = ConvNetConfig
    # batch_size counts whole words (several targets each), so fewer rows a batch than a window model's
    train_defaults = {"lr": 3e-3, "batch_size": 64, "max_steps": 8000, "eval_interval": 1000,
                      "weight_decay": 0.1, "schedule": "cosine", "warmup_steps": 200, "grad_clip": 1.0}

    def __init__(self, config: ConvNetConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        c = config
        self.wte = Embedding(vocab_size, c.n_embd)
        self.proj = Linear(c.n_embd, c.n_embd2)
        dilations = [2**i for i in range(c.n_layer)] * c.n_stack
        self.blocks = nn.ModuleList(ResidualBlock(c.n_embd2, d, c.dropout) for d in dilations)
        self.mix = Linear(c.n_embd2, c.n_embd2)
        self.head = Linear(c.n_embd2, vocab_size)
        shrink_head(self.head)

    @property
    def receptive_field(self) -> int:
        """Positions each prediction reads (its own included)."""
        return self.config.receptive_field

    def extra_repr(self) -> str:
        return f"receptive_field={self.receptive_field}"

    def logits(self, skip: torch.Tensor) -> torch.Tensor:
        """The output layers: relu -> 1x1 -> relu -> 1x1, on the sum of the skip connections."""
        return self.head(torch.relu(self.mix(torch.relu(skip))))

    def forward(self, idx, targets=None):
        x = self.proj(self.wte(idx))  # (B, T, C)
        skip = 0
        for block in self.blocks:
            x, s = block(shifted(x, block.dilation), x)
            skip = skip + s
        logits = self.logits(skip)  # (B, T, V)
        return logits, self.loss(logits, targets)

    def init_state(self, n: int) -> list[list[torch.Tensor]]:
        # per layer its inputs at t - dilation .. t - 1, oldest first: zeros before the word, as the forward pads
        zeros = torch.zeros(n, self.config.n_embd2, device=self.device)
        return [[zeros] * block.dilation for block in self.blocks]

    def step(self, tokens, state):
        x = self.proj(self.wte(tokens))  # (n, C)
        skip, queues = 0, []
        for block, queue in zip(self.blocks, state):
            queues.append(queue[1:] + [x])  # a list of (n, C) tensors: moving the queue costs no tensor op
            x, s = block(queue[0], x)  # queue[0]: this layer's input `dilation` steps ago
            skip = skip + s
        return self.logits(skip), queues
