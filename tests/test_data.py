"""Reading, vocabulary, split, encoding and both batch shapes."""

import random

import pytest
import torch

from makemore.data import PAD, DataError, Dataset, Vocab, encode_items, load_dataset, read_items, split_items


def test_read_strips_drops_blanks_and_accepts_crlf_and_bom(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffanna \r\n\r\n  bob\r\n\n\tcy\n".encode())
    assert read_items(path) == ["anna", "bob", "cy"]


def test_other_encoding(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("zoë\nrené\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 1.*--encoding"):
        read_items(path)
    assert read_items(path, "latin-1") == ["zoë", "rené"]


def test_boundary_is_its_own_token_so_a_dot_is_ordinary():
    vocab = Vocab.from_items(["a.b", "..", "b"])
    assert vocab.chars == [".", "a", "b"]
    ids = vocab.encode("a.b")
    assert 0 not in ids and vocab.size == 4
    assert vocab.decode(ids) == "a.b"


def test_encode_decode_round_trip_with_unicode():
    items = ["émilie", "zoë", "😀x", "שלום", "e\u0301"]
    vocab = Vocab.from_items(items)
    x, y = encode_items(items, vocab)
    for i, item in enumerate(items):
        n = len(item)
        assert vocab.decode(y[i, :n].tolist()) == item
        assert vocab.decode(x[i, 1:n + 1].tolist()) == item


def test_targets_and_padding():
    vocab = Vocab.from_items(["ab", "c"])
    x, y = encode_items(["ab", "c"], vocab)
    a, b, c = vocab.encode("abc")
    assert x.tolist() == [[0, a, b], [0, c, 0]]
    assert y.tolist() == [[a, b, 0], [c, 0, PAD]]


def test_split_is_a_disjoint_partition_and_repeatable():
    items = [f"w{i}" for i in range(1000)]
    train, dev, test = split_items(items, seed=7)
    assert (len(train), len(dev), len(test)) == (800, 100, 100)
    assert sorted(train + dev + test) == sorted(items)
    assert not (set(train) & set(dev) or set(train) & set(test) or set(dev) & set(test))
    assert split_items(items, seed=7) == (train, dev, test)
    assert split_items(items, seed=8) != (train, dev, test)


def test_default_split_is_the_courses():
    """random.seed(42); random.shuffle(words); cuts at int(0.8 n) and int(0.9 n)."""
    words = [f"name{i}" for i in range(32033)]
    random.seed(42)
    shuffled = list(words)
    random.shuffle(shuffled)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    train, dev, test = split_items(words)
    assert (len(train), len(dev), len(test)) == (25626, 3203, 3204)
    assert (train, dev, test) == (shuffled[:n1], shuffled[n1:n2], shuffled[n2:])


def test_too_few_items_for_a_split():
    with pytest.raises(DataError, match="too few"):
        split_items(["a", "b", "c"])


def test_windows_are_every_target_with_its_previous_characters(tiny_data: Dataset):
    split = tiny_data.train
    block = 4
    w = split.windows(block)
    assert len(w) == split.num_targets
    expected_x, expected_y = [], []
    for item in split.items:
        ids = tiny_data.vocab.encode(item) + [0]
        context = [0] * block
        for target in ids:
            expected_x.append(list(context))
            expected_y.append(target)
            context = context[1:] + [target]
    x, y = w.get(torch.arange(len(w)))
    assert x.tolist() == expected_x
    assert y.tolist() == expected_y


def test_sequences_hold_the_same_targets_as_windows(tiny_data: Dataset):
    split = tiny_data.dev
    real = split.y[split.y != PAD]
    assert real.numel() == split.num_targets
    assert sorted(real.tolist()) == sorted(split.windows(3).targets.tolist())


def test_load_dataset_counts_duplicates_and_caps_length(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("\n".join(["anna"] * 3 + [f"n{i}" for i in range(20)] + ["x" * 50]), encoding="utf-8")
    warnings = []
    data = load_dataset(path, max_length=10, warn=warnings.append)
    assert data.duplicates == 2
    assert data.max_item_length <= 10
    assert any("dropped 1 items" in w for w in warnings)


def test_far_longer_line_warns(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("\n".join([f"name{i}" for i in range(200)] + ["y" * 5000]), encoding="utf-8")
    warnings = []
    load_dataset(path, warn=warnings.append)
    assert any("--max-length" in w for w in warnings)


def test_bundled_data_is_the_default():
    items = read_items(None)
    assert len(items) > 5000 and all(item == item.lower() for item in items)
