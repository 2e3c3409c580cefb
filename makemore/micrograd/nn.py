"""A small neural-network library on the scalar engine, with PyTorch's shape: modules, parameters, zero_grad."""

from __future__ import annotations

import random

from .engine import Value

ACTIVATIONS = ("tanh", "relu", "linear")


class Module:
    """Base class: parameters() lists the learned Values, zero_grad() resets their gradients."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


def check_inputs(what: str, nin: int, x) -> None:
    """A ValueError when x is not nin inputs (zip would silently read fewer, or ignore the extra)."""
    if len(x) != nin:
        raise ValueError(f"this {what} takes {nin} inputs, got {len(x)}")


class Neuron(Module):
    """act(w . x + b), with w ~ U(-1, 1) and b = 0."""

    def __init__(self, nin: int, act: str = "tanh", rng: random.Random | None = None):
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r} (valid: {', '.join(ACTIVATIONS)})")
        rng = rng or random
        self.w = [Value(rng.uniform(-1, 1), label=f"w{i}") for i in range(nin)]
        self.b = Value(0.0, label="b")
        self.act = act

    def __call__(self, x: list[Value | float]) -> Value:
        check_inputs("neuron", len(self.w), x)
        out = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return out.tanh() if self.act == "tanh" else out.relu() if self.act == "relu" else out

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{self.act.capitalize()}Neuron({len(self.w)})"


class Layer(Module):
    """nout neurons, each reading the same nin inputs."""

    def __init__(self, nin: int, nout: int, act: str = "tanh", rng: random.Random | None = None):
        self.neurons = [Neuron(nin, act, rng) for _ in range(nout)]

    def __call__(self, x: list[Value | float]) -> list[Value]:
        check_inputs("layer", len(self.neurons[0].w) if self.neurons else len(x), x)
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer([{', '.join(str(n) for n in self.neurons)}])"


class MLP(Module):
    """Layers of sizes nin -> nouts[0] -> ... -> nouts[-1]; every layer but the last applies act."""

    def __init__(self, nin: int, nouts: list[int], act: str = "tanh", rng: random.Random | None = None):
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1], act if i < len(nouts) - 1 else "linear", rng)
                       for i in range(len(nouts))]

    def __call__(self, x: list[Value | float]) -> list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def cross_entropy(logits: list[Value], target: int) -> Value:
    """-log softmax(logits)[target], computed as logsumexp(logits) - logits[target]."""
    if not 0 <= target < len(logits):  # a negative index would silently pick a class from the end
        raise ValueError(f"target {target} is not one of the {len(logits)} classes (0 to {len(logits) - 1})")
    shift = max(v.data for v in logits)  # a constant: exp cannot overflow, and the gradient is unchanged
    return sum((v - shift).exp() for v in logits).log() + shift - logits[target]
