"""The scalar engine inside torch's autograd: a loss built from Values, its gradient from Value.backward()."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from .engine import Value


def _nest(flat: list, shape: tuple[int, ...]):
    """A flat list in a tensor's shape as nested lists (a matrix is a list of rows)."""
    if len(shape) == 0:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0]
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


class ScalarGraph(torch.autograd.Function):
    """forward: each tensor's numbers become leaf Values and fn builds the loss; backward: Value.backward()."""

    @staticmethod
    def forward(ctx, fn: Callable[..., Value], *tensors: torch.Tensor) -> torch.Tensor:
        leaves = [[Value(x) for x in t.detach().flatten().tolist()] for t in tensors]
        loss = fn(*(_nest(values, tuple(t.shape)) for values, t in zip(leaves, tensors)))
        ctx.leaves, ctx.loss, ctx.shapes = leaves, loss, [t.shape for t in tensors]
        return torch.tensor(loss.data, dtype=tensors[0].dtype, device=tensors[0].device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        if ctx.loss is None:  # a second backward (retain_graph) would add to the leaves' gradients again
            raise RuntimeError("this scalar graph was already backpropagated; compute the loss again")
        ctx.loss.backward()
        grads = [torch.tensor([v.grad for v in values], dtype=grad_output.dtype, device=grad_output.device)
                 .view(shape) * grad_output for values, shape in zip(ctx.leaves, ctx.shapes)]
        ctx.leaves = ctx.loss = None  # free the graph: at a large batch it holds hundreds of thousands of Values
        return None, *grads


def scalar_loss(fn: Callable[..., Value], *tensors: torch.Tensor) -> torch.Tensor:
    """fn(*tensors as nested lists of Values) -> Value, as a torch scalar whose gradient reaches the tensors."""
    return ScalarGraph.apply(fn, *tensors)
