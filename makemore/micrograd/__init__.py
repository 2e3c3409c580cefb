"""The course's first lecture below PyTorch: a scalar autograd engine and a small neural-network library on it."""

from .engine import Value
from .nn import MLP, Layer, Module, Neuron, cross_entropy

__all__ = ["MLP", "Layer", "Module", "Neuron", "Value", "cross_entropy"]
