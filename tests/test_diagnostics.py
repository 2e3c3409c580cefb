"""Training diagnostics: per-layer statistics on a tiny batch-norm model, the observer's cost, the figures."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from makemore import diagnostics as D
from makemore.cli import main
from makemore.models import MODELS, WindowModel
from makemore.plots import PlotError, require_matplotlib
from makemore.runs import train_run
from tests.conftest import quick_config


@dataclass
class TinyBNConfig:
    block_size: int = 3
    n_embd: int = 4
    n_hidden: int = 16


class TinyBN(WindowModel):
    """Embedding -> Linear -> BatchNorm1d -> Tanh -> Linear, from torch.nn's own layers."""

    Config = TinyBNConfig

    def __init__(self, config: TinyBNConfig, vocab_size: int, max_length=None):
        super().__init__(config, vocab_size)
        c = config
        self.wte = nn.Embedding(vocab_size, c.n_embd)
        self.net = nn.Sequential(nn.Linear(c.block_size * c.n_embd, c.n_hidden, bias=False),
                                 nn.BatchNorm1d(c.n_hidden), nn.Tanh(), nn.Linear(c.n_hidden, vocab_size))

    def forward(self, idx, targets=None):
        logits = self.net(self.wte(idx).flatten(1))
        return logits, self.loss(logits, targets)


@pytest.fixture
def tinybn(monkeypatch):
    monkeypatch.setitem(MODELS, "tinybn", TinyBN)
    return "tinybn"


def check_records(records: list[dict], expected_steps: list[int]) -> None:
    assert [r["step"] for r in records] == expected_steps
    for r in records:
        tanh = [s for s in r["layers"].values() if s["type"] == "Tanh"]
        assert tanh, "the tanh layer must be tracked"
        for s in tanh:
            assert 0.0 <= s["saturation"] <= 1.0
        for s in r["layers"].values():
            assert math.isfinite(s["mean"]) and s["std"] >= 0 and math.isfinite(s["grad_std"])
            assert sum(s["hist"]["counts"]) > 0
        assert r["params"], "weight matrices must be tracked"
        for s in r["params"].values():
            assert math.isfinite(s["grad_data"]) and s["grad_data"] > 0
            assert math.isfinite(s["update_data"]) and -10 < s["update_data"] < 0


@pytest.mark.parametrize("model_type", ["tinybn", "bnmlp"])
def test_diagnostics_on_batch_norm_models(tmp_path, tiny_file, tinybn, model_type):
    extra = {"model.n_embd2": 16, "model.n_layer": 2, "model.block_size": 3} if model_type == "bnmlp" else {}
    cfg = quick_config(tmp_path, model_type, tiny_file, **{"train.diagnostics_interval": 10, **extra})
    train_run(cfg, progress=False, write=lambda m: None)
    records = D.read_diagnostics(cfg.work_dir)
    check_records(records, [0, 10, 20])
    layer_types = {s["type"] for s in records[0]["layers"].values()}
    assert {"Embedding", "Linear", "BatchNorm1d", "Tanh"} <= layer_types


def test_update_ratio_is_lr_times_gradient_for_plain_sgd(tiny_data, tinybn):
    torch.manual_seed(0)
    model = TinyBN(TinyBNConfig(), tiny_data.vocab.size)
    observer = D.Diagnostics(model, interval=1)
    lr = 0.1
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = tiny_data.train.windows(3).get(torch.arange(64))
    assert observer.wants(0)
    _, loss = model(x, y)
    loss.backward()
    observer.before_step(0, lr)
    opt.step()
    observer.after_step(0, lr)
    for s in observer.records[0]["params"].values():
        assert s["update_data"] == pytest.approx(math.log10(lr * s["grad_data"]), abs=1e-4)


def test_observer_does_nothing_on_steps_it_does_not_want(tiny_data):
    model = TinyBN(TinyBNConfig(), tiny_data.vocab.size)

    def hooks() -> int:
        return sum(len(m._forward_hooks) for m in model.modules())

    observer = D.Diagnostics(model, interval=5)
    assert not observer.wants(3) and hooks() == 0
    assert observer.wants(5) and hooks() == len(D.tracked_layers(model))
    x, y = tiny_data.train.windows(3).get(torch.arange(32))
    model(x, y)[1].backward()
    observer.before_step(5, 0.01)
    assert hooks() == 0
    observer.after_step(5, 0.01)
    assert len(observer.records) == 1


def test_model_without_child_modules_is_its_own_layer(tiny_data):
    model = MODELS["nbigram"](MODELS["nbigram"].Config(), tiny_data.vocab.size)
    assert [name for name, _ in D.tracked_layers(model)] == ["model"]


def test_train_plots_then_diagnose_redraws_the_figures(tmp_path, tiny_file, capsys):
    require_matplotlib()
    run_dir = tmp_path / "run"
    assert main(["train", "--type", "mlp", "--input", str(tiny_file), "--work-dir", str(run_dir), "--n-embd2", "16",
                 "--batch-size", "32", "--max-steps", "20", "--eval-interval", "10", "--plots", "--no-progress"]) == 0
    names = {"loss.png", "activations.png", "activation_grads.png", "weight_grads.png", "update_ratio.png"}
    assert {p.name for p in (run_dir / "plots").iterdir()} == names
    assert len(D.read_diagnostics(run_dir)) == 20  # --plots without an interval: about 100 records, here every step
    capsys.readouterr()
    assert main(["diagnose", str(run_dir), "--out", str(tmp_path / "again"), "--step", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("step 10 ") and "update:data" in out
    assert {p.name for p in (tmp_path / "again").iterdir()} == names


def test_missing_matplotlib_is_a_one_line_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(PlotError, match=r"pip install 'makemore\[plot\]'"):
        require_matplotlib()
    (tmp_path / "tb").mkdir()
    (tmp_path / "diagnostics.jsonl").write_text('{"step": 0, "lr": 0.1, "layers": {}, "params": {}}\n')
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "makemore[plot]" in capsys.readouterr().err
