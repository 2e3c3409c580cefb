"""Shared fixtures: a tiny corpus cut from the bundled names, and quick configs."""

from __future__ import annotations

import pytest
import torch

from makemore.data import Dataset, bundled_path, load_dataset
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
