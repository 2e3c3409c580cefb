"""TensorBoard logs are real event files: TensorBoard's own reader loads them, with the expected tags."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore import lrfind
from makemore.runs import train_run
from tests.conftest import quick_config


def load(folder: Path) -> dict:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc.Tags()


def test_a_run_logs_scalars_text_and_diagnostic_histograms(tmp_path, tiny_file):
    cfg = quick_config(tmp_path, "mlp", tiny_file, **{"train.diagnostics_interval": 10})
    train_run(cfg, progress=False, write=lambda m: None)
    tags = load(tmp_path / "run" / "tb")
    assert {"loss/train_minibatch_mean", "lr", "loss/dev"} <= set(tags["scalars"])
    assert {"diag_act_std/hidden", "diag_weight_update_data/hidden.weight", "diag_weight_grad_data/head.weight"} <= set(
        tags["scalars"])
    assert {"samples/text_summary", "config/text_summary"} <= set(tags["tensors"])
    assert {"activations/hidden", "activation_grads/head", "weights/wte.weight", "weight_grads/hidden.weight"} <= set(
        tags["histograms"])


def test_without_diagnostics_no_histograms_are_written(tmp_path, tiny_file):
    train_run(quick_config(tmp_path, "mlp", tiny_file), progress=False, write=lambda m: None)
    tags = load(tmp_path / "run" / "tb")
    assert tags["histograms"] == [] and not any(t.startswith("diag_") for t in tags["scalars"])


def test_lr_find_logs_its_curve(tmp_path, tiny_file):
    cfg = quick_config(tmp_path, "mlp", tiny_file)
    result = lrfind.lr_find(cfg, steps=20, out_dir=tmp_path / "lr", plot=False, progress=False, write=lambda m: None)
    tags = load(tmp_path / "lr" / lrfind.TB_DIR)
    assert {"lr_find/lr", "lr_find/loss", "lr_find/smoothed_loss"} <= set(tags["scalars"])
    acc = EventAccumulator(str(tmp_path / "lr" / lrfind.TB_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    assert len(acc.Scalars("lr_find/loss")) == len(result.lrs)
