"""Property-based tests: arbitrary text, bytes, YAML and damaged checkpoints give a result or the one-line error."""

from __future__ import annotations

import io
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makemore import checkpoint
from makemore.checkpoint import CheckpointError
from makemore.config import SECTIONS, ConfigError, resolve, to_dict
from makemore.configfile import load_yaml, set_dotted
from makemore.data import DataError, load_dataset, read_items
from makemore.models import DEFAULT_MODEL, MODELS
from makemore.runs import build_config, train_run

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch():
    """One folder for every example (function-scoped tmp_path does not reset between examples)."""
    folder = Path(tempfile.mkdtemp(prefix="makemore-properties-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def one_line(error: Exception) -> bool:
    text = str(error)
    return bool(text) and "\n" not in text and "\r" not in text


def expected_items(text: str) -> list[str]:
    """The reader's contract, stated independently: BOM dropped, split on newlines, stripped, blanks dropped."""
    return [s.strip() for s in text.removeprefix("\ufeff").split("\n") if s.strip()]


# ---------------------------------------------------------------- the reader

@FAST
@given(text=st.text(max_size=300))
def test_reader_on_arbitrary_text(text, scratch):
    path = scratch / "text.txt"
    path.write_bytes(text.encode("utf-8"))
    try:
        items = read_items(path)
    except DataError as e:
        assert one_line(e)
        assert "\0" in text or not expected_items(text)
        return
    assert "\0" not in text and items == expected_items(text)


@FAST
@given(raw=st.binary(max_size=300), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16", "ascii", "klingon"]))
def test_reader_on_arbitrary_bytes(raw, encoding, scratch):
    path = scratch / "bytes.txt"
    path.write_bytes(raw)
    try:
        items = read_items(path, encoding)
    except DataError as e:
        assert one_line(e)
        return
    assert items and all(item and item == item.strip() and "\n" not in item and "\0" not in item for item in items)


@FAST
@given(lines=st.lists(st.text(max_size=12), max_size=40), max_length=st.none() | st.integers(1, 8))
def test_dataset_on_arbitrary_lines(lines, max_length, scratch):
    """Either a dataset whose vocabulary encodes and decodes every item exactly, or the one-line error."""
    path = scratch / "lines.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    try:
        data = load_dataset(path, max_length=max_length, warn=lambda message: None)
    except DataError as e:
        assert one_line(e)
        return
    kept = [s for s in expected_items("\n".join(lines)) if max_length is None or len(s) <= max_length]
    assert sorted(data.train.items + data.dev.items + data.test.items) == sorted(kept)
    assert min(len(data.train), len(data.dev), len(data.test)) >= 1
    for item in kept:
        assert data.vocab.decode(data.vocab.encode(item)) == item


# ---------------------------------------------------------------- the config loader

SCALARS = (st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=8)
           | st.sampled_from(["mlp", "wavenet", "bigram", "adamw", "sgd", "cosine", "cpu", "cuda"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
PLAUSIBLE = st.integers(-2, 20) | st.floats(-1, 2) | st.sampled_from([None, True, 0, 1, 8, 0.5, [0.9, 0.99]])
MODEL_KEYS = ["type", "block_size", "n_embd", "n_embd2", "n_layer", "smoothing", "reg"]


def section(keys: list[str]) -> st.SearchStrategy:
    """A mapping of mostly known keys with plausible or arbitrary values."""
    return st.dictionaries(st.sampled_from([*keys, "bogus"]), PLAUSIBLE | VALUES, max_size=4)


CONFIGS = st.fixed_dictionaries({}, optional={
    "seed": PLAUSIBLE | VALUES, "work_dir": VALUES, "bogus": VALUES,
    "model": section(MODEL_KEYS) | VALUES,
    **{name: section([f.name for f in cls.__dataclass_fields__.values()]) | VALUES
       for name, cls in SECTIONS.items()}})


def check_config(path: Path) -> None:
    """Load and resolve a YAML file: a valid Config or a one-line ConfigError, never another exception."""
    try:
        cfg = resolve(load_yaml(path), MODELS, DEFAULT_MODEL)
    except ConfigError as e:
        assert one_line(e)
        return
    for values in (cfg.train, cfg.sample, cfg.data, cfg.model):
        assert not getattr(values, "problems", list)()
    assert cfg.train.lr > 0 and math.isfinite(cfg.train.lr) and cfg.sample.temperature > 0
    assert 0 <= cfg.seed < 2**63


@FAST
@given(raw=CONFIGS)
def test_config_loader_on_arbitrary_structured_yaml(raw, scratch):
    path = scratch / "structured.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    check_config(path)


YAML_CHARS = st.sampled_from(list("ab19.:-[]{}!&*|>'\"#,?%@` \t\n")) | st.characters(codec="utf-8")


@FAST
@given(text=st.text(alphabet=YAML_CHARS, max_size=120)
       | st.sampled_from(["!!python/object/apply:os.system ['echo hi']\n", "a: !!binary aGk=\n", "&a [*a]\n",
                          "train: &t {lr: *t}\n", "train:\n  lr: .nan\n", "seed: 99999999999999999999\n"]))
def test_config_loader_on_arbitrary_yaml_text(text, scratch):
    path = scratch / "text.yaml"
    path.write_text(text, encoding="utf-8")
    check_config(path)


@FAST
@given(overrides=st.dictionaries(st.sampled_from(["train.lr", "train.batch_size", "model.type", "model.n_embd",
                                                  "sample.top_k", "sample.temperature", "train.betas", "seed",
                                                  "data.max_length", "bogus.key", "train"]),
                                 PLAUSIBLE | VALUES, max_size=4))
def test_overrides_give_a_config_or_the_one_line_error(overrides):
    try:
        cfg = build_config(overrides=overrides)
    except ConfigError as e:
        assert one_line(e)
        return
    raw: dict = {}
    for key, value in overrides.items():  # applied in order, as build_config does: a later one may replace
        set_dotted(raw, key, value)
    resolved = to_dict(cfg)
    for name, section in raw.items():  # every value that was accepted landed where it was put
        for key, value in (section.items() if isinstance(section, dict) else [(None, section)]):
            got = resolved[name] if key is None else resolved[name][key]
            if value is None and key is None:
                continue  # an empty section: defaults
            assert got == value or (isinstance(got, float) and got == float(value)), (name, key, value, got)


# ---------------------------------------------------------------- damaged checkpoints

@pytest.fixture(scope="module")
def small_checkpoint(scratch, tiny_items) -> bytes:
    names = scratch / "names.txt"
    names.write_text("\n".join(tiny_items) + "\n", encoding="utf-8")
    cfg = build_config(overrides={"work_dir": str(scratch / "run"), "data.input": str(names), "model.n_embd2": 8,
                                  "train.max_steps": 5, "train.eval_interval": 5, "train.eval_samples": 0})
    train_run(cfg, progress=False, write=lambda message: None)
    return (scratch / "run" / "last.pt").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_damaged_checkpoint_loads_or_is_refused_in_one_line(data, small_checkpoint, scratch):
    """Truncations and flipped bytes: a clean load (the damage hit tensor bytes) or a CheckpointError."""
    raw = bytearray(small_checkpoint)
    for _ in range(data.draw(st.integers(0, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.none() | st.integers(0, len(raw)))
    path = scratch / "damaged.pt"
    path.write_bytes(bytes(raw[:cut]))
    try:
        cfg, data, model = checkpoint.restore(checkpoint.load(path))
    except CheckpointError as e:
        assert one_line(e)
        return
    # a clean load is a whole run: the saved architecture, a vocabulary that encodes its items, three splits
    intact = torch.load(io.BytesIO(small_checkpoint), weights_only=True)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in intact["model"].items()}
    assert cfg.model_type == "mlp" and model.vocab_size == data.vocab.size and min(map(len, data.splits.values()))


def test_whole_tensor_values_survive_a_checkpoint(scratch, small_checkpoint):
    """The undamaged file itself loads, so the property above does exercise the success path."""
    path = scratch / "intact.pt"
    path.write_bytes(small_checkpoint)
    cfg, data, model = checkpoint.restore(checkpoint.load(path))
    assert cfg.model_type == "mlp" and all(torch.isfinite(p).all() for p in model.parameters())
