"""The benchmark suite in quick mode on a tiny corpus: each writes JSON with the expected keys and sane values.

No timing thresholds here: the figures themselves belong to `make bench` on a quiet machine.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import (
    bench_backward,
    bench_data,
    bench_matmul,
    bench_profile,
    bench_quality,
    bench_sample,
    bench_speedrun,
    bench_train,
    run_all,
)
from benchmarks.common import Enough, StepTimer, makemore_config, words_batch
from makemore.models import MODELS, WindowModel


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def saved(tmp_path, name: str) -> dict:
    """A result file, checked to hold the machine description every result carries."""
    data = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    assert data["benchmark"] == name
    assert {"cpu", "cores", "torch", "date", "torch_threads"} <= set(data["machine"])
    assert data["table"].startswith("|") or "|" in data["table"]
    return data


def test_matmul(tmp_path):
    bench_matmul.run(quick=True, results_dir=tmp_path)
    data = saved(tmp_path, "matmul")
    assert positive(data["peak_gflops"])
    assert all(positive(row["gflops"]) for row in data["shapes"])


def test_train_covers_every_model_at_both_settings(tmp_path, tiny_file):
    bench_train.run(quick=True, results_dir=tmp_path, input=tiny_file, peak_gflops=100.0)
    rows = saved(tmp_path, "train")["rows"]
    assert {(r["model"], r["setting"]) for r in rows} == {(m, s) for m in MODELS for s in bench_train.SETTINGS}
    for r in rows:
        if not r["trainable"]:
            continue
        for key in ("ms_per_step", "steps_per_s", "target_chars_per_s", "target_chars_per_step"):
            assert positive(r[key]), (r["model"], r["setting"], key)
        if r["flops_per_step"]:  # zero for a model without matmuls (a table lookup): then there is no MFU
            assert positive(r["gflops_per_s"]) and positive(r["mfu"])
        assert r["steps_timed"] >= 5
    mlp = next(r for r in rows if r["model"] == "mlp" and r["setting"] == "makemore")
    assert mlp["model_config"]["n_embd"] == 64 and mlp["model_config"]["block_size"] == 16
    assert mlp["makemore_py_chars_per_s"] == 14_300 and positive(mlp["speedup_vs_makemore_py"])


def test_makemore_setting_is_32_words(tiny_data):
    window = next(m for m, cls in MODELS.items() if issubclass(cls, WindowModel) and cls.trainable)
    per_item = tiny_data.train.num_targets / len(tiny_data.train)
    assert words_batch(tiny_data, window) == round(32 * per_item)
    assert makemore_config("mlp", tiny_data).train.batch_size == round(32 * per_item)


def test_step_timer_stops_after_enough_steps():
    timer = StepTimer(warmup=2, max_steps=3, min_steps=1, seconds=60)
    with pytest.raises(Enough):
        for step in range(100):
            timer.wants(step)
    assert len(timer.step_seconds()) == 3


def test_sample(tmp_path, tiny_file):
    bench_sample.run(quick=True, results_dir=tmp_path, input=tiny_file, models=["bigram", "mlp"])
    rows = saved(tmp_path, "sample")["rows"]
    assert [r["model"] for r in rows] == ["bigram", "mlp"]
    for r in rows:
        for key in ("big_words_per_s", "one_words_per_s", "big_seconds_per_call", "mean_word_length", "dev_nll"):
            assert positive(r[key]), (r["model"], key)


def test_data_scales_and_fits_count_models(tmp_path, tiny_file):
    bench_data.run(quick=True, results_dir=tmp_path, input=tiny_file, sizes=(500, 1000))
    rows = saved(tmp_path, "data")["rows"]
    assert [r["lines"] for r in rows] == [500, 1000]
    counts = {m for m, cls in MODELS.items() if not cls.trainable}
    for r in rows:
        assert positive(r["load_seconds"]) and r["load_peak_rss_mb"] >= 0
        assert {f["model"] for f in r["fits"]} == counts
        assert all(positive(f["fit_seconds"]) and positive(f["dev_nll"]) for f in r["fits"])


def test_make_corpus_perturbs_names(tmp_path, tiny_file):
    path = bench_data.make_corpus(tmp_path / "c.txt", 1000, tiny_file)
    lines = path.read_text(encoding="utf-8").split()
    assert len(lines) == 1000 and len(set(lines)) > 600  # mostly new lines, not copies


def test_speedrun_runs_the_cli(tmp_path, tiny_file):
    bench_speedrun.run(quick=True, results_dir=tmp_path, input=tiny_file)
    run = saved(tmp_path, "speedrun")["runs"][0]
    assert positive(run["wall_seconds"]) and positive(run["dev_nll"]) and run["final_step"] == 20
    assert "--config configs/speedrun.yaml" in saved(tmp_path, "speedrun")["command"]


def test_quality_trains_shipped_configs_through_the_cli(tmp_path, tiny_file):
    bench_quality.run(quick=True, results_dir=tmp_path, input=tiny_file, models=["bigram", "mlp"])
    rows = {r["model"]: r for r in saved(tmp_path, "quality")["rows"]}
    assert set(rows) == {"bigram", "mlp"} and rows["mlp"]["final_step"] == 20 and rows["bigram"]["final_step"] == 0
    assert all(positive(r["dev_nll"]) and r["train_nll"] < 4 for r in rows.values())


def test_profile(tmp_path, tiny_file):
    bench_profile.run(quick=True, results_dir=tmp_path, input=tiny_file, model="mlp")
    data = saved(tmp_path, "profile")
    assert data["model"] == "mlp" and data["ops"] and positive(data["self_cpu_us_per_step"])
    assert all(positive(op["self_cpu_us_per_step"]) for op in data["ops"][:3])


def test_run_all_writes_report(tmp_path, tiny_file):
    out = run_all.run_all(quick=True, results_dir=tmp_path, only=["matmul"], input=tiny_file)
    assert positive(out["matmul"]["seconds"])
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "fp32 matmul" in report and "GFLOP/s" in report
    assert "seconds" in saved(tmp_path, "matmul")


def test_backward_times_both_variants_of_each_model(tmp_path, tiny_file):
    bench_backward.run(quick=True, results_dir=tmp_path, input=tiny_file, threads=1)
    rows = saved(tmp_path, "backward")["rows"]
    assert [r["model"] for r in rows] == ["mlp", "bnmlp"]
    for r in rows:
        for key in ("autograd_fwd_bwd_ms", "manual_fwd_bwd_ms", "autograd_step_ms", "manual_step_ms"):
            assert positive(r[key]), (r["model"], key)
        assert r["manual_over_autograd_step"] == r["manual_step_ms"] / r["autograd_step_ms"]
        assert r["max_loss_difference"] < 1e-4  # the two variants train the same model on the same batches
        assert r["steps_timed"] == 5 and r["threads"] == 1
