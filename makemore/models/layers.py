"""The course's layers written out: each is a torch.nn.Module whose math is spelled out here.

They are modules (not plain classes as in the course notebook) so that parameters, buffers,
checkpoints, .to(device) and train()/eval() work as for any torch model. Shapes follow the
course: Linear weights are (fan_in, fan_out) and multiply from the right.

Each layer made with manual=True computes the same numbers through a torch.autograd.Function whose
backward is the derived formula (the course's "backprop ninja"), so no gradient comes from autograd's
own derivatives: ManualLinear, ManualBatchNorm, ManualTanh, ManualEmbedding, and ManualCrossEntropy
for the loss.
"""

from __future__ import annotations

import torch
from torch import nn


class Linear(nn.Module):
    """y = x @ W + b, with W ~ N(0, 1) * gain / sqrt(fan_in) (Kaiming style) and b = 0."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = True, gain: float = 1.0, manual: bool = False):
        super().__init__()
        self.manual = manual
        # gain / sqrt(fan_in) keeps the output's scale near the input's; gain 5/3 offsets tanh's squashing
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) * gain / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.manual:
            return ManualLinear.apply(x, self.weight, self.bias)
        out = x @ self.weight  # (..., fan_in) -> (..., fan_out)
        return out + self.bias if self.bias is not None else out


class BatchNorm1d(nn.Module):
    """Normalize each channel by batch statistics in training, by running estimates in eval.

    Accepts (B, C) or (B, T, C); a 3-D input is normalized over both B and T (dims 0 and 1), so
    each of the C channels has one mean and one variance, as in the course.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, manual: bool = False):
        super().__init__()
        self.eps, self.momentum, self.manual = eps, momentum, manual
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
            if self.manual:  # the same numbers, the gradient from the derived formula
                out, mean, var = ManualBatchNorm.apply(x, self.gain, self.bias, self.eps)
            else:
                mean = x.mean(dims)  # (C,)
                xc = x - mean
                var = (xc * xc).mean(dims)  # (C,) the batch's own (biased) variance normalizes it
            with torch.no_grad():  # the running variance is the unbiased estimate, as torch.nn keeps it
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
            if self.manual:
                return out
        else:
            xc, var = x - self.running_mean, self.running_var
        # gain * (x - mean) / sqrt(var + eps) + bias, with the per-channel factors folded into one (C,) scale
        scale = self.gain * torch.rsqrt(var + self.eps)  # (C,)
        return xc * scale + self.bias


class Tanh(nn.Module):
    """Elementwise tanh."""

    def __init__(self, manual: bool = False):
        super().__init__()
        self.manual = manual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ManualTanh.apply(x) if self.manual else torch.tanh(x)


class Embedding(nn.Module):
    """A learned row of size dim for each of num tokens, initialized N(0, 1); lookup by index."""

    def __init__(self, num: int, dim: int, manual: bool = False):
        super().__init__()
        self.manual = manual
        self.weight = nn.Parameter(torch.randn(num, dim))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.manual:
            return ManualEmbedding.apply(self.weight, idx)
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


# The hand-written backward passes: each layer's gradient from its derived formula (manual=True).

class ManualLinear(torch.autograd.Function):
    """y = x @ w + b; backward: dx = dy @ w.T, dw = x.T @ dy, db = dy summed over every row."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        out = x @ w
        return out + b if b is not None else out

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        rows_x, rows_dy = x.reshape(-1, x.size(-1)), dy.reshape(-1, dy.size(-1))  # (..., n) as (rows, n)
        dx = dy @ w.T if ctx.needs_input_grad[0] else None
        dw = rows_x.T @ rows_dy if ctx.needs_input_grad[1] else None
        db = rows_dy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


class ManualTanh(torch.autograd.Function):
    """y = tanh(x); backward: dx = (1 - y**2) * dy."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return (1 - y * y) * dy


class ManualBatchNorm(torch.autograd.Function):
    """Training-mode batch norm: (y, batch mean, batch variance); the backward is the single-expression form.

    With xhat = (x - mean) / sqrt(var + eps) over n values a channel (var the biased one it is normalized
    by): dx = gain / sqrt(var + eps) / n * (n * dy - sum(dy) - xhat * sum(dy * xhat)).
    """

    @staticmethod
    def forward(ctx, x, gain, bias, eps):
        dims = tuple(range(x.dim() - 1))  # every dim but the channels
        mean = x.mean(dims)
        xc = x - mean
        var = (xc * xc).mean(dims)
        inv_std = torch.rsqrt(var + eps)
        ctx.save_for_backward(xc * inv_std, inv_std, gain)
        ctx.mark_non_differentiable(mean, var)
        return xc * (gain * inv_std) + bias, mean, var  # the same expression as BatchNorm1d's autograd path

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        xhat, inv_std, gain = ctx.saved_tensors
        dims = tuple(range(dy.dim() - 1))
        n = dy.numel() // dy.size(-1)
        dsum, dxhat_sum = dy.sum(dims), (dy * xhat).sum(dims)
        dx = gain * inv_std / n * (n * dy - dsum - xhat * dxhat_sum)
        return dx, dxhat_sum, dsum, None


class ManualEmbedding(torch.autograd.Function):
    """y = weight[idx]; backward: each row of dy is added into the gradient row of its token (a scatter-add)."""

    @staticmethod
    def forward(ctx, weight, idx):
        ctx.save_for_backward(idx)
        ctx.num = weight.size(0)
        return weight.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)

    @staticmethod
    def backward(ctx, dy):
        (idx,) = ctx.saved_tensors
        dw = dy.new_zeros(ctx.num, dy.size(-1))
        return dw.index_add_(0, idx.reshape(-1), dy.reshape(-1, dy.size(-1))), None


class ManualCrossEntropy(torch.autograd.Function):
    """Mean -log softmax(logits)[target] over rows (N, V); backward: (softmax - onehot) / N."""

    @staticmethod
    def forward(ctx, logits, targets):
        logp = torch.log_softmax(logits, dim=-1)
        ctx.save_for_backward(logp, targets)
        return -logp.gather(1, targets[:, None]).mean()

    @staticmethod
    def backward(ctx, dloss):
        logp, targets = ctx.saved_tensors
        dlogits = logp.exp()  # softmax
        dlogits[torch.arange(len(targets), device=targets.device), targets] -= 1  # minus the one-hot
        return dlogits * (dloss / len(targets)), None
