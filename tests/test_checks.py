"""Sanity checks: good models pass, deliberately broken ones fail the check that targets their bug."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from makemore import checks
from makemore.cli import main
from makemore.models import MODELS, SequenceModel, WindowModel
from makemore.runs import build_config
from tests.conftest import quick_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


class Peek(SequenceModel):
    """A sequence model whose prediction at position t also reads the input at t + 1: the next character."""

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.now = nn.Embedding(vocab_size, vocab_size)
        self.next = nn.Embedding(vocab_size, vocab_size)
        with torch.no_grad():
            self.now.weight.mul_(0.1)
            self.next.weight.mul_(0.1)

    def forward(self, idx, targets=None):
        ahead = torch.cat([idx[:, 1:], idx[:, :1] * 0], dim=1)  # (B, T): the input one step later
        logits = self.now(idx) + self.next(ahead)
        return logits, self.loss(logits, targets)


class BatchStatsInEval(WindowModel):
    """A window model whose normalization always uses the batch's statistics, even in eval mode."""

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.wte = nn.Embedding(vocab_size, 8)
        self.head = nn.Linear(8, vocab_size)

    def forward(self, idx, targets=None):
        h = self.wte(idx[:, -1])
        h = (h - h.mean(0)) / (h.std(0, correction=0) + 1e-5)
        logits = self.head(torch.tanh(h))
        return logits, self.loss(logits, targets)


class Overconfident(WindowModel):
    """Logits a hundred times too large at initialization; and a bug: only a bias can learn."""

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.table = nn.Parameter(torch.randn(vocab_size, vocab_size) * 100)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx, targets=None):
        logits = self.table[idx[:, -1]].detach() + self.bias  # the detach is the bug
        return logits, self.loss(logits, targets)


def statuses(results: list[checks.CheckResult]) -> dict[str, str]:
    return {r.name: r.status for r in results}


def run(model_type: str, tmp_path, tiny_file, monkeypatch, cls=None, steps: int = 300) -> dict[str, str]:
    if cls is not None:
        monkeypatch.setitem(MODELS, model_type, cls)
    _, results = checks.check_config(quick_config(tmp_path, model_type, tiny_file), steps, write=lambda m: None)
    return statuses(results)


def test_peeking_model_fails_causality(tmp_path, tiny_file, monkeypatch):
    result = run("peek", tmp_path, tiny_file, monkeypatch, Peek)
    assert result["causality"] == "fail"
    assert result["initial loss"] == "pass"


def test_batch_statistics_in_eval_mode_fail_batch_independence(tmp_path, tiny_file, monkeypatch):
    assert run("batchstats", tmp_path, tiny_file, monkeypatch, BatchStatsInEval)["batch independence"] == "fail"


def test_a_check_that_raises_is_a_failure_with_the_error(tiny_data):
    model = MODELS["mlp"](MODELS["mlp"].Config(block_size=2, n_embd=4, n_embd2=8), tiny_data.vocab.size + 1)
    model.wte = nn.Embedding(2, 4)  # too few rows: every forward pass raises an index error
    results = checks.run_checks(model, tiny_data, build_config().train, overfit_steps=10)
    assert [r.name for r in results if r.status != "fail"] == ["train/eval mode", "bias before BN"]  # no batch norm
    assert results[1].detail.startswith("raised ") and "index" in results[1].detail  # the error, in one line


def test_confidently_wrong_start_warns_and_a_model_that_cannot_learn_fails(tmp_path, tiny_file, monkeypatch):
    result = run("overconfident", tmp_path, tiny_file, monkeypatch, Overconfident, steps=100)
    assert result["initial loss"] == "warn"
    assert result["overfit one batch"] == "fail"


def test_good_models_pass_and_count_models_skip_what_does_not_apply(tmp_path, tiny_file, monkeypatch):
    result = run("mlp", tmp_path, tiny_file, monkeypatch)
    assert {k for k, v in result.items() if v != "pass"} == {"train/eval mode", "bias before BN"}  # no batch norm
    assert set(result.values()) == {"pass", "skip"}
    assert run("bigram", tmp_path, tiny_file, monkeypatch) == {
        "initial loss": "skip", "causality": "pass", "batch independence": "pass", "train/eval mode": "skip",
        "softmaxed outputs": "pass", "bias before BN": "skip", "zero_grad": "skip", "overfit one batch": "skip"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_passes(path, tiny_file):
    cfg = build_config(str(path), {"data.input": str(tiny_file)})
    _, results = checks.check_config(cfg, write=lambda m: None)
    assert not [r for r in results if r.status == "fail"], results


def test_loss_floor_counts_identical_contexts():
    x = torch.tensor([[1, 2], [1, 2], [3, 4]])
    assert checks.loss_floor(x, torch.tensor([5, 6, 7])) == pytest.approx(2 * math.log(2) / 3)
    assert checks.loss_floor(x, torch.tensor([5, 5, 7])) == 0.0
    seq_x, seq_y = torch.tensor([[0, 1], [0, 2]]), torch.tensor([[1, 0], [2, -1]])
    assert checks.loss_floor(seq_x, seq_y) == pytest.approx(2 * math.log(2) / 3)


def test_cli_prints_each_check_and_fails_the_broken_model(tmp_path, tiny_file, monkeypatch, capsys):
    monkeypatch.setitem(MODELS, "peek", Peek)
    assert main(["check", "--type", "mlp", "--input", str(tiny_file), "--overfit-steps", "300"]) == 0
    assert capsys.readouterr().out.count("PASS") == 6  # and two checks for batch norm skip
    assert main(["check", "--type", "peek", "--input", str(tiny_file), "--overfit-steps", "300"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  causality" in out and "failed: defaults" in out
