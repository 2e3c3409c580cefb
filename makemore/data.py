"""Reading items, the vocabulary, the seeded train/dev/test split, and tensor encoding.

Each split is encoded once into padded integer tensors; batches are drawn by tensor indexing, so
training does no per-example Python work. Imports nothing from the package.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .output import shorten

BOUNDARY = 0  # index of the word boundary: the start context and the end-of-word target
PAD = -1  # target value of padding positions, ignored by the loss
PADDED_LIMIT = 2**29  # bytes of one padded (items, width) tensor beyond which an outlier is an error, not a warning
CHUNK = 1 << 20  # items encoded (or windows indexed) at a time, so the temporaries of a huge list stay bounded


class DataError(ValueError):
    """A problem with the input data the user can fix."""


def bundled_path(name: str = "names.txt") -> Path:
    """Path of a data file shipped inside the package (the repository's data/ folder)."""
    return Path(str(resources.files("makemore.bundled") / name))


def read_items(path: str | Path | None, encoding: str = "utf-8", keep_lines: bool = False,
               flag: str = "--input") -> list[str]:
    """Items of a text file, one a line: stripped, blank lines dropped; CRLF and a BOM accepted.

    keep_lines: every line unstripped (blank ones too), so that a line's number is its index + 1.
    flag: the option that named the file, for the message when it does not exist.
    """
    path = bundled_path() if path is None else Path(path)
    if not path.exists():
        raise DataError(f"input file {path} does not exist: check the path given to {flag}")
    if path.is_dir():
        raise DataError(f"input {path} is a directory: give a text file with one item a line")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read input file {path}: {e.strerror}") from None
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {shorten(encoding)}: use a Python codec name such as utf-8 or "
                        f"latin-1") from None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid {encoding} text; "
                        f"pass the file's encoding with --encoding (e.g. --encoding latin-1)") from None
    text = text.removeprefix("\ufeff")
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise DataError(f"{path}, line {line}: contains a NUL byte, so it is not a text file; "
                        f"give a text file with one item a line")
    items = [line.strip() for line in text.split("\n")]
    if not any(items):
        what = "is empty" if not raw else "has only blank lines"
        raise DataError(f"input file {path} {what}: it needs one item a line")
    return text.split("\n") if keep_lines else [item for item in items if item]


def long_item_warning(items: list[str]) -> str | None:
    """A warning when the longest item dwarfs the rest, since it sets the padded width of every batch."""
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    k = int(0.99 * (len(lengths) - 1))
    typical, longest = int(np.partition(lengths, k)[k]), int(lengths.max())
    if longest > max(64, 8 * typical):
        return (f"warning: the longest item has {longest} characters while 99% have at most {typical}; "
                f"pass --max-length {4 * typical} to drop such outliers")
    return None


def _line_of(path: str | Path | None, encoding: str, item: str) -> int:
    """The file line holding item (for messages only: read_items keeps no line numbers)."""
    text = (bundled_path() if path is None else Path(path)).read_bytes().decode(encoding)
    lines = text.removeprefix("\ufeff").split("\n")
    return next((i for i, line in enumerate(lines, 1) if line.strip().rpartition("\t")[2].strip() == item), 0)


@dataclass
class Vocab:
    """Characters of the data; index 0 is the word boundary, so every character is ordinary."""

    chars: list[str]

    @classmethod
    def from_items(cls, items: list[str]) -> Vocab:
        return cls(sorted(set("".join(items))))

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    def encode(self, word: str) -> list[int]:
        stoi = {c: i + 1 for i, c in enumerate(self.chars)}
        return [stoi[c] for c in word]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def unknown(self, text: str) -> list[str]:
        """Characters of text that the vocabulary does not have."""
        known = set(self.chars)
        return sorted({c for c in text if c not in known})


def code_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer type that holds every token and the padding target -1: int8 for up to 127 tokens."""
    return next(t for t in (torch.int8, torch.int16, torch.int32) if vocab_size - 1 <= torch.iinfo(t).max)


def encode_items(items: list[str], vocab: Vocab, dtype: torch.dtype = torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of whole items, vectorized: (N, T) each with T = longest + 1, of the given integer type.

    Item "emma" becomes inputs [0, e, m, m, a] and targets [e, m, m, a, 0], then padding:
    inputs padded with 0, targets with -1 so the loss skips them. Encoded CHUNK items at a time, straight
    into the result, so a list of millions needs little beyond the result itself.
    """
    lengths = np.fromiter((len(s) for s in items), dtype=np.int64, count=len(items))
    width = int(lengths.max(initial=0)) + 1
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    x = np.zeros((len(items), width), dtype=np_dtype)
    y = np.full((len(items), width), PAD, dtype=np_dtype)
    table = np.array([ord(c) for c in vocab.chars], dtype=np.uint32)  # sorted, as vocab.chars is
    for lo in range(0, len(items), CHUNK):
        hi = min(lo + CHUNK, len(items))
        n = lengths[lo:hi]
        codes = np.frombuffer("".join(items[lo:hi]).encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(table, codes) + 1
        if len(codes) and (ids > len(table)).any() | (table[np.minimum(ids, len(table)) - 1] != codes).any():
            raise DataError("an item has characters outside the vocabulary")
        rows = np.repeat(np.arange(lo, hi), n)
        cols = np.arange(len(codes)) - np.repeat(np.cumsum(n) - n, n)
        x[rows, cols + 1] = ids
        y[rows, cols] = ids
        y[np.arange(lo, hi), n] = BOUNDARY
    return torch.from_numpy(x), torch.from_numpy(y)


@dataclass
class Windows:
    """Every target character of a split with the block_size characters before it."""

    source: torch.Tensor  # (N * W,) inputs left-padded with block_size - 1 boundaries, flattened
    start: torch.Tensor  # (M,) where each target's window starts in source
    targets: torch.Tensor  # (M,)
    offsets: torch.Tensor  # (block_size,)
    labels: torch.Tensor | None = None  # (M,) the label id of each window's item, for labelled data

    def __len__(self) -> int:
        return len(self.targets)

    width = 1  # targets per example

    def get(self, sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contexts (n, block_size) and targets (n,) of the windows numbered sel, as int64 (stored compact).

        Labelled data: the contexts gain a first column, the label id (see with_labels).
        """
        x = self.source[self.start[sel, None].long() + self.offsets].long()
        return with_labels(x, self.labels, sel), self.targets[sel].long()


def with_labels(x: torch.Tensor, labels: torch.Tensor | None, sel: torch.Tensor) -> torch.Tensor:
    """Inputs with the label id of each example as a first column (a labelled model reads it off), if labelled."""
    return x if labels is None else torch.cat([labels[sel, None].long(), x], dim=1)


@dataclass
class Sequences:
    """Whole items as examples: inputs (n, T) and targets (n, T), padding targets -1."""

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor  # (n,) real targets of each item: its characters plus the end boundary
    labels: torch.Tensor | None = None  # (n,) label ids, for labelled data

    def __len__(self) -> int:
        return len(self.x)

    @property
    def width(self) -> int:
        """Targets per example (padding included)."""
        return self.x.size(1)

    def get(self, sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the items numbered sel, cut to the longest of them.

        Positions past every chosen item's end are padding that a causal model's real predictions never
        read, so cutting them saves their compute; on a GPU the cut would cost a host sync a batch, so
        batches there keep the full width.
        """
        x, y = self.x[sel], self.y[sel]
        if x.device.type == "cpu" and len(sel):
            width = int(self.lengths[sel].max())
            x, y = x[:, :width], y[:, :width]
        return with_labels(x.long(), self.labels, sel), y.long()  # stored compact (int8 for most alphabets)


@dataclass
class Split:
    """One split's items and their encoding, serving both window and whole-sequence examples."""

    name: str
    items: list[str]
    x: torch.Tensor  # (N, T) inputs, boundary-started and 0-padded; compact integers (code_dtype)
    y: torch.Tensor  # (N, T) targets, boundary-ended and -1-padded
    labels: torch.Tensor | None = None  # (N,) each item's label id (an index of Dataset.labels); None: unlabelled
    _windows: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    @functools.cached_property
    def num_targets(self) -> int:
        """Characters predicted over the whole split, each item's end boundary included."""
        return sum(map(len, self.items)) + len(self.items)

    def windows(self, block_size: int) -> Windows:
        """The split as fixed context windows; built once per block size from the same encoding.

        Compact: the inputs keep their integer type, and window starts are int32 where they fit; built
        CHUNK items at a time so the temporaries stay small.
        """
        if block_size not in self._windows:
            n, width = self.x.shape
            padded = torch.cat([self.x.new_zeros(n, block_size - 1), self.x], dim=1)  # (N, W)
            stride = width + block_size - 1
            index = torch.int32 if n * stride < 2**31 else torch.long
            starts, targets, labels = [], [], []
            for lo in range(0, n, CHUNK):
                y = self.y[lo:lo + CHUNK]
                rows, cols = (y != PAD).nonzero(as_tuple=True)  # row-major: item by item, in order
                starts.append(((rows + lo) * stride + cols).to(index))
                targets.append(y[rows, cols])
                if self.labels is not None:
                    labels.append(self.labels[rows + lo])
            self._windows[block_size] = Windows(
                source=padded.reshape(-1), start=torch.cat(starts), targets=torch.cat(targets),
                offsets=torch.arange(block_size, device=self.x.device),
                labels=torch.cat(labels) if self.labels is not None else None)
        return self._windows[block_size]

    def sequences(self) -> Sequences:
        """The split as whole items."""
        return Sequences(self.x, self.y, (self.y != PAD).sum(1), self.labels)

    def subset(self, label: int) -> Split:
        """The items of one label id, as a split of their own (for each label's NLL)."""
        rows = (self.labels == label).nonzero().flatten()
        return Split(self.name, [self.items[i] for i in rows.tolist()], self.x[rows], self.y[rows], self.labels[rows])


@dataclass
class Dataset:
    """Vocabulary and the three encoded splits."""

    vocab: Vocab
    train: Split
    dev: Split
    test: Split
    duplicates: int = 0
    labels: list[str] = field(default_factory=list)  # the label names of labelled data, sorted; [] unlabelled

    @classmethod
    def from_splits(cls, vocab: Vocab, train: list[str], dev: list[str], test: list[str], duplicates: int = 0,
                    labels: list[str] | None = None, item_labels: tuple[list[str], ...] | None = None) -> Dataset:
        """Encode three splits; labelled data also gives the label names and each split's item labels."""
        ids = {label: i for i, label in enumerate(labels or [])}
        splits = []
        for i, (name, items) in enumerate((("train", train), ("dev", dev), ("test", test))):
            label_ids = None
            if item_labels is not None:
                label_ids = torch.tensor([ids[label] for label in item_labels[i]], dtype=torch.long)
            splits.append(Split(name, items, *encode_items(items, vocab, code_dtype(vocab.size)), label_ids))
        return cls(vocab, *splits, duplicates=duplicates, labels=list(labels or []))

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with its tensors on device (no copy when they are there already)."""
        device = torch.device(device)
        if self.train.x.device == device:
            return self
        moved = [Split(s.name, s.items, s.x.to(device), s.y.to(device),
                       None if s.labels is None else s.labels.to(device)) for s in self.splits.values()]
        return Dataset(self.vocab, *moved, duplicates=self.duplicates, labels=self.labels)

    @functools.cached_property
    def item_sets(self) -> tuple[set[str], set[str]]:
        """The train items and the held-out (dev and test) items, as sets for tagging samples."""
        return set(self.train.items), set(self.dev.items) | set(self.test.items)

    @property
    def max_item_length(self) -> int:
        return max(len(s) for split in self.splits.values() for s in split.items)

    @property
    def label_train_counts(self) -> torch.Tensor:
        """Train items of each label (L,), on the CPU: the labels' prior."""
        return torch.bincount(self.train.labels.cpu(), minlength=len(self.labels))

    def summary(self) -> str:
        chars = "".join(self.vocab.chars)
        text = (f"items: {len(self.train)} train, {len(self.dev)} dev, {len(self.test)} test "
                f"({self.duplicates} duplicate lines); longest {self.max_item_length} characters\n"
                f"vocabulary: {self.vocab.size} tokens (boundary + {len(chars)} characters: {chars})")
        if self.labels:
            counts = sorted(zip(self.label_train_counts.tolist(), self.labels), reverse=True)
            shown = ", ".join(f"{label} {n:,}" for n, label in counts[:12])
            more = f", and {len(counts) - 12} more" if len(counts) > 12 else ""
            text += f"\nlabels: {len(counts)} (train items each: {shown}{more})"
        return text


def split_items(items: list[str], seed: int = 42, dev_fraction: float = 0.1,
                test_fraction: float = 0.1) -> tuple[list[str], list[str], list[str]]:
    """Seeded shuffle, then cut into train/dev/test.

    With the defaults this is the course's split exactly: random.seed(42), random.shuffle of the
    items in file order, cuts at int(0.8 * n) and int(0.9 * n).
    """
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n1, n2 = _cuts(n, dev_fraction, test_fraction)
    if min(n1, n2 - n1, n - n2) < 1:
        need = next((m for m in range(n + 1, n + 100_000) if min(_sizes(m, dev_fraction, test_fraction)) >= 1),
                    int(2 / min(dev_fraction, test_fraction)) + 1)
        raise DataError(f"only {n} items: too few to give each of train, dev and test at least one; "
                        f"add items (at least {need} are needed)")
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


def _cuts(n: int, dev_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Where train ends and dev ends (rounded first, so 0.8 * n is not 0.7999... * n)."""
    return int(round(1 - dev_fraction - test_fraction, 12) * n), int(round(1 - test_fraction, 12) * n)


def _sizes(n: int, dev_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n1, n2 = _cuts(n, dev_fraction, test_fraction)
    return n1, n2 - n1, n - n2


def cap_items(items: list[str], max_length: int | None, path: str | Path | None, encoding: str,
              warn=print) -> list[bool]:
    """Which items to keep under --max-length (with a warning for those dropped), or, without a cap, a
    warning when one outlier sets every batch's width (an error when it would not fit in memory)."""
    if max_length is not None:
        keep = [len(s) <= max_length for s in items]
        if not any(keep):
            raise DataError(f"every item is longer than --max-length {max_length}: raise it")
        if not all(keep):
            warn(f"dropped {keep.count(False)} items longer than --max-length {max_length}")
        return keep
    message = long_item_warning(items)
    if message:
        longest = max(items, key=len)
        where = f"{bundled_path() if path is None else path}, line {_line_of(path, encoding, longest)}"
        padded = len(items) * (len(longest) + 1) * 8  # bytes of each int64 (items, width) tensor
        if padded > PADDED_LIMIT:  # one outlier would make every batch and the encoding giant
            raise DataError(f"{where}: {message.removeprefix('warning: ')} (padded to its width, the data "
                            f"would take {padded / 2**30:.1f} GiB)")
        warn(f"{message} ({where})")
    return [True] * len(items)


def load_dataset(path: str | Path | None, encoding: str = "utf-8", max_length: int | None = None,
                 seed: int = 42, dev_fraction: float = 0.1, test_fraction: float = 0.1,
                 warn=print) -> Dataset:
    """Read, cap, split and encode a data file."""
    items = read_items(path, encoding)
    items = [s for s, kept in zip(items, cap_items(items, max_length, path, encoding, warn)) if kept]
    duplicates = len(items) - len(set(items))
    try:
        train, dev, test = split_items(items, seed, dev_fraction, test_fraction)
    except DataError as e:
        raise DataError(f"input file {bundled_path() if path is None else path}: {e}") from None
    return Dataset.from_splits(Vocab.from_items(items), train, dev, test, duplicates)
