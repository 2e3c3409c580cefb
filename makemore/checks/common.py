"""What every check shares: its result, the tolerances, batches drawn as training draws them, a guard
that puts the model back as it was, and the one batch-norm detector."""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..data import Split
from ..models import Model
from ..train import Batches

INITIAL_LOSS_SLACK = 0.1  # warn when the first loss is more than 10% above ln(V)
OVERFIT_TOLERANCE = 0.05  # nats above the batch's floor that still count as "near zero"
MATCH_TOLERANCE = 1e-4  # |difference| of logits, relative to their scale, that counts as equal
GRADIENT_TOLERANCE = 1e-6  # largest |manual - autograd| gradient entry that still counts as a match
PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| below which a row of outputs looks like probabilities


@dataclass
class CheckResult:
    """One check's outcome: 'pass', 'warn', 'fail' or 'skip', with the numbers behind it."""

    name: str
    status: str
    detail: str


def logits_match(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, float]:
    """Whether two logit tensors agree to MATCH_TOLERANCE of their scale, and their largest difference."""
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    scale = 1.0 + a.float().abs().max().item() if a.numel() else 1.0
    return math.isfinite(diff) and diff <= MATCH_TOLERANCE * scale, diff


def random_batch(split: Split, model: Model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n random training examples, drawn exactly as the training loop draws them."""
    return Batches(split, model, n, seed).next()


@contextmanager
def untouched(model: Model):
    """Whatever a check does inside, the model's weights, buffers and mode, and torch's RNG, come back as they were."""
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    saved, training = [t.detach().clone() for t in tensors], model.training
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for t, s in zip(tensors, saved):
                t.copy_(s)
        model.train(training)


def is_batch_norm(module: torch.nn.Module) -> bool:
    """A batch norm: torch's, the course's, or any class derived from one."""
    return any("batchnorm" in c.__name__.lower() for c in type(module).__mro__)


def first_examples(model: Model, split: Split, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    examples = model.examples(split)
    return examples.get(torch.arange(min(n, len(examples)), device=split.x.device))
