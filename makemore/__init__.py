"""makemore: character-level language models that learn how items are spelled and make more of them."""

import os

# Reproducibility: MKL chooses matmul kernels by memory alignment and thread timing, so the same seeded
# run could round differently from one process to the next. Strict conditional numerical reproducibility
# fixes the kernel choice; its AVX-512 branch still varies with two threads on an Intel Xeon, the AVX2
# branch does not, so AVX2 it is. It must be set before torch loads MKL, so here, before any module of
# the package imports torch. A user's own setting wins.
os.environ.setdefault("MKL_CBWR", "AVX2,STRICT")

__version__ = "0.1.0"

# The Python API. `makemore.train` is the function from here on, not the training loop's module: reach the
# module with `from makemore.train import ...` or importlib.import_module("makemore.train"), never with
# `import makemore.train as T` (which gives the function).
from .api import Run, Samples, load, train  # noqa: E402 - after MKL_CBWR: these import torch

__all__ = ["Run", "Samples", "load", "train"]
