"""The course's layers written out: each is a torch.nn.Module whose math is spelled out here.

They are modules (not plain classes as in the course notebook) so that parameters, buffers,
checkpoints, .to(device) and train()/eval() work as for any torch model. Shapes follow the
course: Linear weights are (fan_in, fan_out) and multiply from the right.
"""

from __future__ import annotations

import torch
from torch import nn


class Linear(nn.Module):
    """y = x @ W + b, with W ~ N(0, 1) * gain / sqrt(fan_in) (Kaiming style) and b = 0."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = True, gain: float = 1.0):
        super().__init__()
        # gain / sqrt(fan_in) keeps the output's scale near the input's; gain 5/3 offsets tanh's squashing
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) * gain / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight  # (..., fan_in) -> (..., fan_out)
        return out + self.bias if self.bias is not None else out


class BatchNorm1d(nn.Module):
    """Normalize each channel by batch statistics in training, by running estimates in eval.

    Accepts (B, C) or (B, T, C); a 3-D input is normalized over both B and T (dims 0 and 1), so
    each of the C channels has one mean and one variance, as in the course.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gain = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        # running estimates: buffers, so they are saved and moved with the model but never trained
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(x.dim() - 1))  # every dim but the channels: (0,) or (0, 1)
        if self.training:
            n = x.numel() // x.size(-1)
            if n < 2:
                raise ValueError(f"BatchNorm1d in training mode needs more than one value per channel, got "
                                 f"input of shape {tuple(x.shape)}; use a batch size of at least 2")
            mean = x.mean(dims)  # (C,)
            xc = x - mean
            var = (xc * xc).mean(dims)  # (C,) the batch's own (biased) variance normalizes it
            with torch.no_grad():  # the running variance is the unbiased estimate, as torch.nn keeps it
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        else:
            xc, var = x - self.running_mean, self.running_var
        # gain * (x - mean) / sqrt(var + eps) + bias, with the per-channel factors folded into one (C,) scale
        scale = self.gain * torch.rsqrt(var + self.eps)  # (C,)
        return xc * scale + self.bias


class Tanh(nn.Module):
    """Elementwise tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class Embedding(nn.Module):
    """A learned row of size dim for each of num tokens, initialized N(0, 1); lookup by index."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num, dim))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # a row lookup; index_select's backward (index_add) is several times faster than weight[idx]'s
        return self.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)  # (B, T) -> (B, T, C)


class FlattenConsecutive(nn.Module):
    """Concatenate each n consecutive positions: (B, T, C) -> (B, T/n, n*C), or (B, n*C) when T == n."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        if t % self.n:
            raise ValueError(f"FlattenConsecutive({self.n}) cannot fuse {t} positions: {t} is not a multiple of "
                             f"{self.n}")
        x = x.reshape(b, t // self.n, c * self.n)  # (B, T/n, n*C): neighbours side by side, in order
        return x.squeeze(1) if t == self.n else x  # the last fusion leaves one vector per example: (B, n*C)

    def extra_repr(self) -> str:
        return f"n={self.n}"


class Sequential(nn.Module):
    """Apply layers in order."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
