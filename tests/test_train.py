"""The one training loop: schedules, optimizer groups, checkpoints, reproducibility, early stop."""

import pytest
import torch

from makemore import checkpoint
from makemore.config import TrainConfig
from makemore.data import load_dataset
from makemore.evaluate import split_nll
from makemore.models import create_model
from makemore.train import TrainingDiverged, lr_at, make_optimizer, train
from tests.conftest import quick_config


def test_schedules():
    cosine = TrainConfig(lr=1.0, max_steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(0, cosine) == pytest.approx(0.1) and lr_at(9, cosine) == pytest.approx(1.0)
    assert lr_at(10, cosine) == pytest.approx(1.0) and lr_at(100, cosine) == pytest.approx(0.1)
    assert lr_at(55, cosine) == pytest.approx(0.55)
    step = TrainConfig(lr=1.0, max_steps=100, schedule="step", step_at=0.75, step_factor=0.1)
    assert lr_at(74, step) == 1.0 and lr_at(75, step) == pytest.approx(0.1)
    assert lr_at(99, TrainConfig(lr=0.5, schedule="constant")) == 0.5


def test_weight_decay_spares_biases(tiny_data):
    model = create_model("mlp", quick_config_model(), tiny_data.vocab.size)
    decayed, plain = make_optimizer(model, TrainConfig(weight_decay=0.1)).param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def quick_config_model():
    from makemore.models.mlp import MLPConfig

    return MLPConfig(block_size=3, n_embd=4, n_embd2=16)


def run(tmp_path, tiny_file, name, **overrides):
    cfg = quick_config(tmp_path / name, "mlp", tiny_file, **{"model.n_embd2": 32, **overrides})
    data = load_dataset(tiny_file, warn=lambda m: None)
    torch.manual_seed(cfg.seed)
    model = create_model("mlp", cfg.model, data.vocab.size)
    work = tmp_path / name
    work.mkdir(parents=True, exist_ok=True)
    result = train(model, data, cfg, work, progress=False, write=lambda m: None)
    return model, data, result, work


def test_same_seed_same_run(tmp_path, tiny_file):
    a, data, ra, _ = run(tmp_path, tiny_file, "a")
    b, _, rb, _ = run(tmp_path, tiny_file, "b")
    c, _, _, _ = run(tmp_path, tiny_file, "c", seed=7)
    assert ra.best_dev_loss == rb.best_dev_loss
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.head.weight, c.head.weight)


def test_best_and_last_checkpoints(tmp_path, tiny_file):
    model, data, result, work = run(tmp_path, tiny_file, "r", **{"train.eval_interval": 10})
    best, last = checkpoint.load(work / "model.pt"), checkpoint.load(work / "last.pt")
    assert last["step"] == 30 and last["optimizer"] is not None
    assert best["best_dev_loss"] == pytest.approx(result.best_dev_loss)
    model.load_state_dict(best["model"])
    assert split_nll(model, data.dev) == pytest.approx(result.best_dev_loss)


def test_target_loss_stops_early(tmp_path, tiny_file):
    _, _, result, _ = run(tmp_path, tiny_file, "t", **{"train.target_loss": 10.0, "train.eval_interval": 5})
    assert result.stopped == "target" and result.step == 5


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_file):
    _, _, _, work = run(tmp_path, tiny_file, "d", **{"train.eval_interval": 10})
    good = (work / "last.pt").read_bytes()
    with pytest.raises(TrainingDiverged, match=r"step \d+.*lower the learning rate"):
        run(tmp_path, tiny_file, "d", **{"train.lr": 1e30, "train.eval_interval": 10, "train.max_steps": 40})
    assert (work / "last.pt").read_bytes() == good


def test_a_compiler_failure_falls_back_to_eager_with_a_warning(tmp_path, tiny_file, monkeypatch):
    def broken(model):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    cfg = quick_config(tmp_path / "c", "mlp", tiny_file, **{"model.n_embd2": 32, "train.compile": True})
    data = load_dataset(tiny_file, warn=lambda m: None)
    torch.manual_seed(cfg.seed)
    model = create_model("mlp", cfg.model, data.vocab.size)
    (tmp_path / "c").mkdir()
    messages = []
    result = train(model, data, cfg, tmp_path / "c", progress=False, write=messages.append)
    assert messages[0] == "warning: --compile failed (RuntimeError); training without it"
    assert result.stopped == "finished" and result.step == 30


def test_without_flock_a_run_trains_unlocked(tmp_path, tiny_file, monkeypatch):
    import makemore.runs as R

    monkeypatch.setattr(R, "fcntl", None)  # as on Windows
    results = R.train_run(quick_config(tmp_path, "mlp", tiny_file), progress=False, write=lambda m: None)
    assert results["final_step"] == 30 and not (tmp_path / "run" / ".lock").exists()
