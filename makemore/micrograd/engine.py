"""A scalar autograd engine: each Value is a node of a computation graph that knows its local derivatives."""

from __future__ import annotations

import math
import sys
from pathlib import Path


class Value:
    """A scalar, the operation that made it from its children, and the gradient of the output with respect to it."""

    __slots__ = ("data", "grad", "label", "_backward", "_prev", "_op")

    def __init__(self, data: float, _children: tuple[Value, ...] = (), _op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._backward = lambda: None  # spreads out.grad to the children by the chain rule; set by the op
        self._prev = _children  # a tuple, not a set: a fixed order keeps the sums of gradients reproducible
        self._op = _op

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other: Value | float) -> Value:
        if not isinstance(other, Value):  # a constant exponent: the course's power rule
            out = Value(self.data**other, (self,), f"**{other:g}")

            def _backward():
                self.grad += other * self.data ** (other - 1) * out.grad
            out._backward = _backward
            return out
        out = Value(self.data**other.data, (self, other), "**")

        def _backward():  # a Value exponent as well: d(a**b)/db = a**b * ln a, for a positive base a
            self.grad += other.data * self.data ** (other.data - 1) * out.grad
            other.grad += out.data * math.log(self.data) * out.grad
        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of {self.data:g}: the logarithm is defined for positive numbers only")
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data**2) * out.grad
        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill in .grad of every node this one depends on (added to what is there, as in the course)."""
        topo = self.nodes()
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __neg__(self) -> Value:
        return self * -1

    def __radd__(self, other: float) -> Value:
        return self + other

    def __sub__(self, other: Value | float) -> Value:
        return self + (-other)

    def __rsub__(self, other: float) -> Value:
        return other + (-self)

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __truediv__(self, other: Value | float) -> Value:
        return self * other**-1

    def __rtruediv__(self, other: float) -> Value:
        return other * self**-1

    def __rpow__(self, other: float) -> Value:
        return Value(other) ** self

    def __repr__(self) -> str:
        name = f"label={self.label!r}, " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    def nodes(self) -> list[Value]:
        """Every node of the graph that ends here, children before parents."""
        topo, visited, stack = [], set(), [(self, False)]
        # an explicit stack, not recursion: a sum of thousands of terms is a graph thousands of nodes deep
        while stack:
            v, children_done = stack.pop()
            if children_done:
                topo.append(v)
            elif v not in visited:
                visited.add(v)
                stack.append((v, True))
                stack.extend((child, False) for child in reversed(v._prev))
        return topo

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text: a record (name | data | grad) per value, a small node per operation.

        A value without a label is named v<i> after its place in the graph's order, so every node has a name.
        """
        nodes = self.nodes()
        ids = {v: f"v{i}" for i, v in enumerate(nodes)}
        lines = ["digraph {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for v in nodes:
            name = _escape(v.label or ids[v])
            lines.append(f'  {ids[v]} [shape=record, label="{{ {name} | data {v.data:.4f} | grad {v.grad:.4f} }}"];')
            if v._op:
                lines.append(f'  {ids[v]}_op [shape=circle, label="{_escape(v._op)}"];')
                lines.append(f"  {ids[v]}_op -> {ids[v]};")
                lines.extend(f"  {ids[child]} -> {ids[v]}_op;" for child in v._prev)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def draw(self, path: str | Path) -> Path:
        """Render the graph to path (.svg, .png, .pdf) with the graphviz package, or write DOT text when it cannot."""
        path = Path(path)
        text = self.to_dot()
        fmt = path.suffix.lstrip(".").lower()
        if fmt == "dot":
            path.write_text(text, encoding="utf-8")
            return path
        try:
            import graphviz

            path.write_bytes(graphviz.Source(text).pipe(format=fmt or "svg"))
            return path
        except ImportError:
            why = "the graphviz package is not installed (pip install 'makemore[graphviz]')"
        except Exception as e:  # noqa: BLE001 - no `dot` program, or a format it lacks: fall back to the text
            why = f"graphviz could not render it ({e.__class__.__name__})"
        dot = path.with_suffix(".dot")
        dot.write_text(text, encoding="utf-8")
        print(f"{why}: wrote {dot} instead; render it with: dot -T{fmt or 'svg'} {dot} -o {path}", file=sys.stderr)
        return dot


def _escape(text: str) -> str:
    """Text safe inside a DOT record label: backslash the characters that delimit fields and strings."""
    return "".join("\\" + c if c in '\\"{}|<>' else c for c in text)
