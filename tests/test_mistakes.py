"""The course's common mistakes as checks, and `check --gradients`: each fails on a model or loop built to make it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from makemore import checks
from makemore.cli import main
from makemore.models import MODELS, SequenceModel, WindowModel
from makemore.models import layers as L
from makemore.runs import build_config

CONFIGS = Path(__file__).parent.parent / "configs"
SMALL = {"block_size": 3, "n_embd": 4, "n_embd2": 16}


def small(model_type: str, vocab: int, **options):
    cls = MODELS[model_type]
    torch.manual_seed(0)
    return cls(cls.Config(**SMALL, **({"n_layer": 2} if model_type == "bnmlp" else {}), **options), vocab)


def train_cfg(**options):
    return build_config(overrides={f"train.{k}": v for k, v in options.items()}).train


# --gradients: the course's comparison table

def table_rows(out: str) -> dict[str, tuple[str, str, float]]:
    rows = re.findall(r"^  (\S+(?: output \(\w+\))?)\s+\| exact: (\w+)\s*\| approximate: (\w+)\s*\| maxdiff: (\S+)$",
                      out, re.MULTILINE)
    return {name: (exact, approx, float(diff)) for name, exact, approx, diff in rows}


@pytest.mark.parametrize("model_type", ["mlp", "bnmlp"])
def test_gradient_table_of_the_shipped_config_passes(model_type, tiny_file, tiny_data, capsys):
    assert main(["check", "--gradients", str(CONFIGS / f"{model_type}.yaml"), "--input", str(tiny_file),
                 "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    names = {k for k, _ in MODELS[model_type](MODELS[model_type].Config(), tiny_data.vocab.size).named_parameters()}
    assert names <= set(rows) and {"logits", "wte output (Embedding)"} <= set(rows)  # every parameter, and activations
    assert all(approx == "True" and diff <= 1e-6 for _, approx, diff in rows.values()), rows
    assert "PASS  manual backward" in out and "a batch of 64" in out


def test_gradient_check_finds_a_wrong_formula_where_it_starts(tiny_data, monkeypatch):
    model = small("bnmlp", tiny_data.vocab.size)
    result, rows = checks.check_gradients(model, tiny_data, train_cfg(batch_size=32))
    assert result.status == "pass" and len(rows) == 1 + 2 + 2 * (2 + 3 + 1) + 2  # logits, head, 2 layers, wte

    def wrong(ctx, dy):  # tanh's derivative written as 1 - y instead of 1 - y**2
        (y,) = ctx.saved_tensors
        return (1 - y) * dy

    monkeypatch.setattr(L.ManualTanh, "backward", staticmethod(wrong))
    result, rows = checks.check_gradients(model, tiny_data, train_cfg(batch_size=32))
    assert result.status == "fail"
    bad = [r.name for r in rows if not r.ok]
    assert bad[0] == "hidden.layers.4 output (BatchNorm1d)"  # the input of the last tanh: the first wrong tensor
    assert {"logits", "head.weight", "hidden.layers.5 output (Tanh)"}.isdisjoint(bad)  # above it, all still right
    assert "wte.weight" in bad and f"first (going backward) {bad[0]}" in result.detail


def test_models_without_a_hand_written_backward_skip_with_the_reason(tiny_file, capsys):
    assert main(["check", "--gradients", "--type", "wavenet", "--input", str(tiny_file)]) == 0
    out = capsys.readouterr().out
    assert "SKIP  manual backward" in out and "manual exists for mlp, bnmlp" in out


# train/eval mode

class RunningStatsOnly(L.BatchNorm1d):
    """A batch norm that ignores self.training: always its running estimates."""

    def forward(self, x):
        return (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps) * self.gain + self.bias


def forgets_eval(model, split) -> float:
    """An evaluation that never switches the model to eval mode."""
    with torch.no_grad():
        x, y = model.examples(split).get(torch.arange(len(model.examples(split))))
        return model(x, y)[1].item()


def never_restores(model, split) -> float:
    """An evaluation that switches to eval mode and leaves the model there."""
    model.eval()
    return forgets_eval(model, split)


def test_train_eval_mode_passes_a_batch_norm_model_and_skips_one_without(tiny_data):
    assert checks.check_train_eval_mode(small("bnmlp", tiny_data.vocab.size), tiny_data).status == "pass"
    assert checks.check_train_eval_mode(small("mlp", tiny_data.vocab.size), tiny_data).status == "skip"


def test_a_forward_that_ignores_training_mode_fails(tiny_data):
    model = small("bnmlp", tiny_data.vocab.size)
    for m in model.modules():
        if isinstance(m, L.BatchNorm1d):
            m.__class__ = RunningStatsOnly
    result = checks.check_train_eval_mode(model, tiny_data)
    assert result.status == "fail" and "ignores self.training" in result.detail
    assert "differ by up to 0.0e+00" in result.detail


@pytest.mark.parametrize("evaluate, says", [(forgets_eval, "call model.eval() before"),
                                            (never_restores, "call model.train() after")])
def test_an_evaluation_that_forgets_the_mode_fails(evaluate, says, tiny_data):
    model = small("bnmlp", tiny_data.vocab.size)
    before = [t.clone() for t in model.state_dict().values()]
    result = checks.check_train_eval_mode(model, tiny_data, evaluate=evaluate)
    assert result.status == "fail" and says in result.detail
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values()))


# zero_grad

def forgets_zero_grad(model, optimizer, x, y):
    """The training step without optimizer.zero_grad()."""
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()


def clipping_forgets_zero_grad(model, optimizer, x, y):
    """The training step without optimizer.zero_grad(), clipping the gradient's norm to 0.001."""
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    optimizer.step()


@pytest.mark.parametrize("model_type", ["mlp", "bnmlp"])
def test_a_step_that_forgets_zero_grad_fails(model_type, tiny_data):
    model = small(model_type, tiny_data.vocab.size)
    before = [p.clone() for p in model.parameters()]
    result = checks.check_zero_grad(model, tiny_data, train_cfg())
    assert result.status == "pass" and "(1.000x)" in result.detail
    result = checks.check_zero_grad(model, tiny_data, train_cfg(), step=forgets_zero_grad)
    ratio = float(re.search(r"\(([0-9.]+)x\)", result.detail)[1])
    assert result.status == "fail" and 1.5 < ratio < 3.5  # A's gradient, plus B's, plus A's again
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the check trained nothing
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_check_sees_through_gradient_clipping(tiny_data):
    model = small("mlp", tiny_data.vocab.size)
    result = checks.check_zero_grad(model, tiny_data, train_cfg(grad_clip=1e-3))
    assert result.status == "pass"
    result = checks.check_zero_grad(model, tiny_data, train_cfg(), step=clipping_forgets_zero_grad)
    assert result.status == "fail" and "(1.000x)" in result.detail  # the same size: only its direction changed


# softmaxed outputs

class SoftmaxedMLP(MODELS["mlp"]):
    """An MLP that returns probabilities where logits belong."""

    def forward(self, idx, targets=None):
        probs = F.softmax(super().forward(idx)[0], dim=-1)
        return probs, self.loss(probs, targets)


def test_probabilities_passed_as_logits_fail(tiny_data):
    assert checks.check_softmaxed_outputs(small("mlp", tiny_data.vocab.size), tiny_data).status == "pass"
    torch.manual_seed(0)
    model = SoftmaxedMLP(MODELS["mlp"].Config(**SMALL), tiny_data.vocab.size)
    result = checks.check_softmaxed_outputs(model, tiny_data)
    floor = math.log(tiny_data.vocab.size - 1 + math.e) - 1  # the best loss of softmaxed one-hot rows
    assert result.status == "fail" and "between 1 and 1" in result.detail and f"e) - 1 = {floor:.3f}" in result.detail


# bias before batch norm

class BiasThroughView(WindowModel):
    """Linear (with a bias) on each character, flattened (a view), then a batch norm: the bias is wasted."""

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.wte = L.Embedding(vocab_size, 4)
        self.lin = L.Linear(4, 4)
        self.norm = L.BatchNorm1d(4 * self.block_size)
        self.head = L.Linear(4 * self.block_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.head(torch.tanh(self.norm(self.lin(self.wte(idx)).flatten(1))))
        return logits, self.loss(logits, targets)


def test_a_bias_before_batch_norm_fails_with_the_wasted_parameters(tiny_data):
    model = small("bnmlp", tiny_data.vocab.size)
    assert checks.check_bias_before_batch_norm(model, tiny_data).status == "pass"
    assert checks.check_bias_before_batch_norm(small("mlp", tiny_data.vocab.size), tiny_data).status == "skip"
    model.hidden.layers[3] = L.Linear(16, 16, bias=True)  # the second hidden layer's matrix, now with a bias
    result = checks.check_bias_before_batch_norm(model, tiny_data)
    assert result.status == "fail" and "hidden.layers.3 (Linear) into hidden.layers.4 (BatchNorm1d)" in result.detail
    assert "16 parameters are wasted" in result.detail
    view = BiasThroughView(MODELS["mlp"].Config(block_size=3), tiny_data.vocab.size)
    result = checks.check_bias_before_batch_norm(view, tiny_data)
    assert result.status == "fail" and "lin (Linear) into norm" in result.detail and "4 parameters" in result.detail


# view where permute was meant: batch independence (and causality) catch the mixing

class TimeMajor(SequenceModel):
    """A running mean of the embeddings, computed time-major; wrong=True uses view where permute was meant."""

    wrong = False

    def __init__(self, config, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        self.wte = nn.Embedding(vocab_size, 8)
        self.head = nn.Linear(8, vocab_size)

    def forward(self, idx, targets=None):
        b, t = idx.shape
        e = self.wte(idx)  # (B, T, C)
        e = e.view(t, b, -1) if self.wrong else e.permute(1, 0, 2)  # (T, B, C)
        mean = e.cumsum(0) / torch.arange(1, t + 1, device=idx.device).view(t, 1, 1)
        mean = mean.view(b, t, -1) if self.wrong else mean.permute(1, 0, 2)  # back to (B, T, C)
        logits = self.head(mean)
        return logits, self.loss(logits, targets)


class ViewNotPermute(TimeMajor):
    wrong = True


def test_view_where_permute_was_meant_fails_batch_independence_and_causality(tiny_data):
    right, wrong = TimeMajor(None, tiny_data.vocab.size), ViewNotPermute(None, tiny_data.vocab.size)
    wrong.load_state_dict(right.state_dict())
    assert checks.check_batch_independence(right, tiny_data).status == "pass"
    assert checks.check_causality(right, tiny_data).status == "pass"
    assert checks.check_batch_independence(wrong, tiny_data).status == "fail"
    assert checks.check_causality(wrong, tiny_data).status == "fail"


def test_the_new_checks_run_in_makemore_check(tiny_file, capsys):
    assert main(["check", "--type", "bnmlp", "--input", str(tiny_file), "--overfit-steps", "300",
                 "--n-embd2", "16", "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    for name in ("train/eval mode", "softmaxed outputs", "bias before BN", "zero_grad"):
        assert f"PASS  {name}" in out
