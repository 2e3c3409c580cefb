"""Shared fixtures and helpers: a tiny corpus cut from the bundled names, quick configs, small models.

Test modules import the helpers as `from tests.conftest import ...`.
"""

from __future__ import annotations

import math

import pytest
import torch

from makemore.data import Dataset, bundled_path, load_dataset
from makemore.models import MODELS, Model, SequenceModel, create_model
from makemore.runs import build_config

torch.set_num_threads(1)  # tiny models: threads only add overhead, and tests may run side by side


@pytest.fixture(scope="session")
def tiny_items() -> list[str]:
    """300 real names: small enough for fast tests, real enough for losses to mean something."""
    return bundled_path().read_text(encoding="utf-8").split()[:300]


@pytest.fixture
def tiny_file(tmp_path, tiny_items):
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(tiny_items) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_data(tiny_file) -> Dataset:
    return load_dataset(tiny_file, warn=lambda message: None)


def quick_config(tmp_path, model_type: str = "mlp", input_file=None, **overrides):
    """A config that trains in well under a second: few steps, small batches, quiet."""
    raw = {"work_dir": str(tmp_path / "run"), "model.type": model_type, "train.max_steps": 30,
           "train.eval_interval": 15, "train.log_interval": 5, "train.batch_size": 32, "train.eval_samples": 2}
    if input_file is not None:
        raw["data.input"] = str(input_file)
    raw.update(overrides)
    return build_config(overrides=raw)


SMALL = {"block_size": 4, "n_embd": 8, "n_embd2": 32, "n_layer": 2}  # applied where a model has the option


def small_model(model_type: str, vocab_size: int, max_length: int) -> Model:
    """The registered model at a test-friendly size, built through the config like the CLI does."""
    options = MODELS[model_type].Config.__dataclass_fields__
    if issubclass(MODELS[model_type], SequenceModel):  # a sequence model's block_size is its positions: keep it
        options = {k: v for k, v in options.items() if k != "block_size"}
    overrides = {f"model.{k}": v for k, v in SMALL.items() if k in options}
    cfg = build_config(overrides={"model.type": model_type, **overrides})
    torch.manual_seed(0)
    return create_model(model_type, cfg.model, vocab_size, max_length)


def fitted(model: Model, data: Dataset) -> Model:
    """The model, fitted on the train split first when it is a count model (the others as they are)."""
    if model.needs_fit:
        model.fit_split(data.train)
    return model


def chi2_critical(df: int, z: float = 3.09) -> float:
    """The chi-square value exceeded with probability 0.001 (z = 3.09), by the Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


class SequenceBigram(SequenceModel):
    """A sequence-shaped bigram: logits at every position from the character there."""

    def __init__(self, table: torch.Tensor):
        super().__init__(None, table.size(0))
        self.table = torch.nn.Parameter(table.clone())

    def forward(self, idx, targets=None):
        logits = self.table[idx]  # (B, T, V)
        return logits, self.loss(logits, targets)
