"""The one evaluation routine: exact mean negative log-likelihood per character over a whole split."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from . import distributed as D
from .data import PAD, Dataset, Split
from .models import Model

EVAL_BATCH = 32_768  # targets (windows, or items x positions) per forward pass; any value gives the same sum


def target_nlls(model: Model, split: Split, batch_size: int = EVAL_BATCH, part: int = 0,
                parts: int = 1) -> Iterator[torch.Tensor]:
    """The NLL in nats of every target character of the split, item by item in order, a batch at a time.

    Each batch is a float64 vector made from the float32 cross-entropy of each target, so any sum of
    them (a split's, an item's) rounds only in float64. Call under inference mode, in eval mode.
    part of parts: only that contiguous share of the examples (one process's share under torchrun).
    """
    examples = model.examples(split)
    rows = max(1, batch_size // examples.width)
    first, end = len(examples) * part // parts, len(examples) * (part + 1) // parts
    for start in range(first, end, rows):
        x, y = examples.get(torch.arange(start, min(start + rows, end), device=model.device))
        logits, _ = model(x)  # (b, V) or (b, T, V)
        y = y.reshape(-1)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y, ignore_index=PAD, reduction="none")
        yield nll[y != PAD].double()  # window examples have no padding; whole items are padded to their longest


@torch.inference_mode()
def split_nll(model: Model, split: Split, batch_size: int = EVAL_BATCH) -> float:
    """Mean NLL in nats over every target character of the split, end-of-word boundaries included.

    Runs in eval mode (batch norm uses its running statistics), so the result does not depend on
    how the split is cut into batches; the sum is accumulated in float64. Under torchrun each process
    sums its share of the examples and the shares are added up (all_reduce): every process gets the
    exact mean in 1/N of the time. Call it on every process then.
    """
    total = torch.zeros((), dtype=torch.float64, device=model.device)
    rank, world_size = D.world()
    with model.evaluating():
        for nll in target_nlls(model, split, batch_size, rank, world_size):
            total += nll.sum()
    return D.all_reduce(total).item() / split.num_targets


def evaluate(model: Model, data: Dataset, splits: tuple[str, ...] = ("train", "dev", "test")) -> dict:
    """{split: {"nll": nats per character, "bpc": bits per character}} for the chosen splits."""
    out = {}
    for name in splits:
        nll = split_nll(model, data.splits[name])
        out[name] = {"nll": nll, "bpc": nll / math.log(2)}
    return out


def evaluate_labels(model: Model, data: Dataset, splits: tuple[str, ...] = ("train", "dev", "test")) -> dict:
    """{label: {split: NLL of that label's items}} of a labelled dataset; null where a split has none of them."""
    out = {}
    for i, label in enumerate(data.labels):
        parts = {name: data.splits[name].subset(i) for name in splits}
        out[label] = {name: split_nll(model, part) if len(part) else None for name, part in parts.items()}
    return out


def nll_table(losses: dict, which: str = "", splits: tuple[str, ...] = ("train", "dev", "test")) -> list[str]:
    """The table every command prints: a heading (which: what was evaluated), then one line a split (of those
    in losses), its NLL in nats and bits a character."""
    return [f"{which}exact NLL over each whole split:"] + [
        f"  {name:5s} nll {losses[name]['nll']:.4f}  ({losses[name]['bpc']:.4f} bits/char)"
        for name in splits if name in losses]


def label_lines(results: dict) -> list[str]:
    """A labelled run's NLL of each label's items, one line a label."""
    fmt = lambda x: "   -  " if x is None else f"{x:.4f}"  # noqa: E731 - a split may hold none of a label's items
    return [f"  label {label}: " + "  ".join(f"{split} {fmt(nll)}" for split, nll in splits.items())
            for label, splits in results.get("labels", {}).items()]
