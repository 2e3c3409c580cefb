"""The learning-rate finder: the suggestion lies inside the bounds and below the rate that diverges."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from makemore import lrfind
from makemore.config import ConfigError
from makemore.models import MODELS, WindowModel
from tests.conftest import quick_config

A = 10.0  # curvature of the synthetic loss: plain SGD diverges exactly above lr = 2 / A


class Quadratic(WindowModel):
    """loss = A/2 * |w|^2, whatever the batch: each SGD step multiplies w by (1 - lr * A)."""

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, idx, targets=None):
        logits = torch.zeros(idx.size(0), self.vocab_size) + 0 * self.w.sum()
        return logits, None if targets is None else 0.5 * A * self.w.square().sum()


def test_suggestion_on_a_synthetic_curve_is_inside_bounds_and_before_divergence():
    lrs = lrfind.schedule(1e-4, 10.0, 200)
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(10.0)
    losses = [3.0 - 0.5 * math.log10(lr / 1e-4) if lr < 0.3 else 1.0 + 50 * (lr - 0.3) for lr in lrs]
    smoothed = lrfind.smooth(losses, 0.9)
    stop = lrfind.diverged_index(smoothed, 4.0)
    assert stop is not None and lrs[stop] > 0.3
    suggestion, at_min = lrfind.suggest(lrs[:stop], smoothed[:stop], divisor=10)
    assert lrs[0] <= suggestion <= lrs[-1]
    assert suggestion < at_min < lrs[stop]
    assert suggestion == pytest.approx(at_min / 10)
    rising = [1.0 + i for i in range(50)]  # worse from the first step: the lowest rate is suggested
    assert lrfind.suggest(lrs[:50], rising)[0] == lrs[0]


def test_lr_find_on_a_loss_that_diverges_above_a_known_rate(tmp_path, tiny_file, monkeypatch):
    monkeypatch.setitem(MODELS, "quadratic", Quadratic)
    cfg = quick_config(tmp_path, "quadratic", tiny_file, **{"train.optimizer": "sgd", "train.weight_decay": 0.0})
    result = lrfind.lr_find(cfg, lr_min=1e-4, lr_max=10.0, steps=100, beta=0.8, out_dir=tmp_path / "lr",
                            progress=False, write=lambda m: None)
    assert 1e-4 <= result.suggestion <= 10.0
    assert result.suggestion < 2 / A
    assert result.diverged_at is not None and result.diverged_at > 2 / A
    assert len(result.lrs) < 100  # stopped early, once the loss blew up
    with open(tmp_path / "lr" / lrfind.CSV_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.lrs) and float(rows[0]["lr"]) == pytest.approx(1e-4)
    assert (tmp_path / "lr" / lrfind.PNG_FILE).stat().st_size > 1000


def test_lr_find_refuses_count_models_and_bad_bounds(tmp_path, tiny_file):
    with pytest.raises(ConfigError, match="no learning rate to find"):
        lrfind.lr_find(quick_config(tmp_path, "bigram", tiny_file), plot=False, progress=False,
                       write=lambda m: None)
    with pytest.raises(ConfigError, match="lr-min"):
        lrfind.lr_find(quick_config(tmp_path, "mlp", tiny_file), lr_min=1.0, lr_max=0.1, write=lambda m: None)


@pytest.mark.parametrize("kwargs,message", [({"steps": 5}, "--steps must be at least 10, got 5"),
                                            ({"beta": 1.0}, r"--smoothing must be in \[0, 1\), got 1"),
                                            ({"divisor": 0.5}, "--divisor must be at least 1, got 0.5")])
def test_lr_find_refuses_bad_settings_before_any_work(kwargs, message, tmp_path, tiny_file):
    with pytest.raises(ConfigError, match=message):
        lrfind.lr_find(quick_config(tmp_path, "mlp", tiny_file), write=lambda m: None, **kwargs)
    assert not (tmp_path / "run").exists()
