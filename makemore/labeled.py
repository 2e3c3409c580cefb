"""Labelled data: LABEL<TAB>ITEM lines, each label's items split on their own, the labels' names and counts.

One model learns every label (girl and boy names, towns of several countries) and generates by label;
the label names are part of the dataset and of the checkpoint.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import torch

from .data import DataError, Dataset, Vocab, _cuts, bundled_path, cap_items, read_items
from .output import shorten


def read_labeled(path: str | Path | None, encoding: str = "utf-8") -> tuple[list[str], list[str]]:
    """Items and their labels from LABEL<TAB>ITEM lines; a line without both, or a label seen once, is an error."""
    where = bundled_path() if path is None else path
    items, labels, first_line = [], [], {}
    for number, line in enumerate(read_items(path, encoding, keep_lines=True), 1):
        if not line.strip():
            continue
        label, tab, item = line.partition("\t")
        label, item = label.strip(), item.strip()
        if not tab or not label or not item:
            what = "has no tab" if not tab else "has an empty label" if not label else "has an empty item"
            raise DataError(f"{where}, line {number}: {what}; with --labeled each line is LABEL<TAB>ITEM "
                            f"(drop --labeled for a file of plain items)")
        items.append(item)
        labels.append(label)
        first_line.setdefault(label, number)
    once = sorted((first_line[label], label) for label, n in collections.Counter(labels).items() if n == 1)
    if once:
        number, label = once[0]
        raise DataError(f"{where}, line {number}: label {shorten(label)} has only this item (labels with one item: "
                        f"{len(once)}); a label needs at least two items, so that one is in train: remove or merge it")
    return items, labels


def split_labeled(items: list[str], labels: list[str], seed: int, dev_fraction: float,
                  test_fraction: float) -> tuple[list[list[str]], list[list[str]]]:
    """Each label's items shuffled (seeded) and cut on their own, so every label has train items."""
    by_label: dict[str, list[str]] = {}
    for item, label in zip(items, labels):
        by_label.setdefault(label, []).append(item)
    out_items, out_labels = [[], [], []], [[], [], []]
    for label in sorted(by_label):
        shuffled = list(by_label[label])
        random.Random(seed).shuffle(shuffled)
        n1, n2 = _cuts(len(shuffled), dev_fraction, test_fraction)
        for i, part in enumerate((shuffled[:n1], shuffled[n1:n2], shuffled[n2:])):
            out_items[i] += part
            out_labels[i] += [label] * len(part)
    if min(map(len, out_items)) < 1:
        raise DataError(f"only {len(items)} items: too few to give each of train, dev and test at least one; "
                        f"add items")
    return out_items, out_labels


def load_labeled(path: str | Path | None, encoding: str = "utf-8", max_length: int | None = None, seed: int = 42,
                 dev_fraction: float = 0.1, test_fraction: float = 0.1, warn=print) -> Dataset:
    """Read, cap, split (label by label) and encode a file of LABEL<TAB>ITEM lines."""
    items, labels = read_labeled(path, encoding)
    keep = cap_items(items, max_length, path, encoding, warn)
    items = [s for s, kept in zip(items, keep) if kept]
    labels = [s for s, kept in zip(labels, keep) if kept]
    duplicates = len(items) - len(set(zip(labels, items)))
    try:
        splits, item_labels = split_labeled(items, labels, seed, dev_fraction, test_fraction)
    except DataError as e:
        raise DataError(f"input file {bundled_path() if path is None else path}: {e}") from None
    return Dataset.from_splits(Vocab.from_items(items), *splits, duplicates, sorted(set(labels)), item_labels)


def label_counts(data: Dataset) -> dict[str, int]:
    """Train items of each label, by name."""
    return dict(zip(data.labels, data.label_train_counts.tolist()))


def label_prior(data: Dataset, device=None, labels: list[int] | None = None) -> torch.Tensor | None:
    """The labels' train frequencies (L,), float64 (only those of `labels` when given, renormalized); None when
    unlabelled: the prior for classifying and for drawing each word's label."""
    if not data.labels:
        return None
    counts = data.label_train_counts.double()
    if labels is not None:
        counts = counts * torch.zeros_like(counts).index_fill_(0, torch.tensor(labels), 1.0)
    return (counts / counts.sum()).to(device)


def unlabelled(what: str) -> DataError:
    """The error of a label asked of a run that has none."""
    return DataError(f"this run was not trained on labelled data, so {what}; train with --labeled on a file of "
                     f"LABEL<TAB>ITEM lines")


def label_id(data: Dataset, label: str) -> int:
    """The id of a label name; an unknown one is an error naming the known ones."""
    if not data.labels:
        raise unlabelled(f"label {shorten(label)} has no meaning")
    if label not in data.labels:
        more = f" and {len(data.labels) - 20} more" if len(data.labels) > 20 else ""
        raise DataError(f"unknown label {shorten(label)}: the run's labels are {', '.join(data.labels[:20])}{more}")
    return data.labels.index(label)


def label_names(data: Dataset, split) -> list[str]:
    """The label of each item of a split."""
    return [data.labels[i] for i in split.labels.tolist()]
