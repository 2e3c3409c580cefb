"""The one evaluation routine: exact mean negative log-likelihood per character over a whole split."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import PAD, Dataset, Split
from .models import Model

EVAL_BATCH = 32_768  # targets (windows, or items x positions) per forward pass; any value gives the same sum


@torch.inference_mode()
def split_nll(model: Model, split: Split, batch_size: int = EVAL_BATCH) -> float:
    """Mean NLL in nats over every target character of the split, end-of-word boundaries included.

    Runs in eval mode (batch norm uses its running statistics), so the result does not depend on
    how the split is cut into batches; the sum is accumulated in float64.
    """
    was_training = model.training
    model.eval()
    device = model.device
    total = torch.zeros((), dtype=torch.float64, device=device)
    examples = model.examples(split)
    rows = max(1, batch_size // examples.width)
    try:
        for start in range(0, len(examples), rows):
            x, y = examples.get(torch.arange(start, min(start + rows, len(examples)), device=device))
            logits, _ = model(x)  # (b, V) or (b, T, V)
            total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=PAD,
                                     reduction="sum").double()
    finally:
        model.train(was_training)
    return total.item() / split.num_targets


def evaluate(model: Model, data: Dataset, splits: tuple[str, ...] = ("train", "dev", "test")) -> dict:
    """{split: {"nll": nats per character, "bpc": bits per character}} for the chosen splits."""
    out = {}
    for name in splits:
        nll = split_nll(model, data.splits[name])
        out[name] = {"nll": nll, "bpc": nll / math.log(2)}
    return out
