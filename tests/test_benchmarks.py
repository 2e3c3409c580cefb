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
    makemore_py,
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


# stands in for makemore.py: prints its step-time lines, 4 ms a step (1000 ms where it would evaluate)
FAKE_MAKEMORE_PY = """
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
assert args["--type"] in ("bigram", "mlp", "rnn", "gru", "bow", "transformer")
for step in range(0, int(args["--max-steps"]), 10):
    print(f"step {step} | loss 2.5000 | step time {1000.0 if step % 500 == 0 and step else 4.0:.2f}ms")
"""


def test_train_covers_every_model_at_both_settings(tmp_path, tiny_file, monkeypatch):
    fake = tmp_path / "makemore.py"
    fake.write_text(FAKE_MAKEMORE_PY, encoding="utf-8")
    monkeypatch.setenv("MAKEMORE_PY", str(fake))
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
        # makemore.py runs beside exactly the models it has, at makemore.py's setting
        assert (r["makemore_py"] is not None) == (r["setting"] == "makemore" and r["model"] in makemore_py.TYPES)
    mlp = next(r for r in rows if r["model"] == "mlp" and r["setting"] == "makemore")
    assert mlp["model_config"]["n_embd"] == 64 and mlp["model_config"]["block_size"] == 16
    ref = mlp["makemore_py"]
    assert ref["ms_per_step"] == 4.0 and ref["threads"] == mlp["threads"]
    assert ref["target_chars_per_s"] == pytest.approx(32 * makemore_py.targets_per_word(tiny_file) / 0.004)
    assert mlp["speedup_vs_makemore_py"] == pytest.approx(mlp["target_chars_per_s"] / ref["target_chars_per_s"])


def test_no_speed_up_without_makemore_py(tmp_path, tiny_file, monkeypatch):
    monkeypatch.setenv("MAKEMORE_PY", str(tmp_path / "absent.py"))
    result = bench_train.run(quick=True, results_dir=tmp_path, input=tiny_file, peak_gflops=100.0, models=["mlp"])
    assert all(r["makemore_py"] is None and r["speedup_vs_makemore_py"] is None for r in result["rows"])
    assert "git clone https://github.com/karpathy/makemore" in result["table"] and "×" not in result["table"]


def test_a_failing_makemore_py_gives_a_note_and_no_speed_up(tmp_path, tiny_file, monkeypatch):
    broken = tmp_path / "makemore.py"
    broken.write_text("import sys\nsys.exit('no module named tensorboard')\n", encoding="utf-8")
    monkeypatch.setenv("MAKEMORE_PY", str(broken))
    result = bench_train.run(quick=True, results_dir=tmp_path, input=tiny_file, peak_gflops=100.0, models=["mlp"])
    mlp = next(r for r in result["rows"] if r["setting"] == "makemore")
    assert mlp["speedup_vs_makemore_py"] is None
    assert "mlp: makemore.py --type mlp failed (exit 1): no module named tensorboard" in result["table"]


def test_a_speed_up_timed_on_a_busy_machine_is_flagged():
    rows = [{"model": "mlp", "cpu_busy_before": [0.02, 0.6]}, {"model": "rnn", "cpu_busy_before": [0.01, None]},
            {"model": "gru"}]
    assert bench_train.busy_note(rows) == [
        "Other work kept the machine up to 60% busy around the timing of mlp and makemore.py's: those speed-ups "
        "are unreliable; rerun on a quiet machine."]
    assert bench_train.busy_note(rows[1:]) == []


# makemore.py's console output, written here in its format: a header, step lines every 10 steps,
# an evaluation at step 500 and samples at step 200 between them
SAMPLE_OUTPUT = """\
{'input_file': 'names.txt', 'type': 'mlp', 'max_steps': 520}
number of examples in the dataset: 32033
step 0 | loss 3.3147 | step time 48.31ms
step 10 | loss 3.1012 | step time 6.40ms
step 190 | loss 2.6021 | step time 6.61ms
step 200 | loss 2.5504 | step time 6.52ms
--------------------------------------------------------------------------------
10 samples that are new:
step 490 | loss 2.4401 | step time 6.21ms
step 500 | loss 2.4009 | step time 6.30ms
step 500 train loss: 2.41 test loss: 2.43
test loss 2.43 is the best so far, saving model to out/model.pt
step 510 | loss 2.3982 | step time 9.75ms
"""


def test_makemore_py_step_times_are_parsed_and_warm_up_and_evaluation_steps_dropped():
    times = makemore_py.parse_step_times(SAMPLE_OUTPUT)
    assert times == {0: 48.31, 10: 6.40, 190: 6.61, 200: 6.52, 490: 6.21, 500: 6.30, 510: 9.75}
    assert makemore_py.steady_ms(times, warmup=100) == [6.61, 6.21, 9.75]


def test_makemore_py_targets_count_each_character_and_the_end_token(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("ab\n\n  abcd \nab\n", encoding="utf-8")  # blank line dropped, spaces stripped, duplicates kept
    assert makemore_py.targets_per_word(path) == (3 + 5 + 3) / 3


def test_makemore_py_is_found_at_the_env_path_or_the_cache(tmp_path, monkeypatch):
    script = tmp_path / "makemore.py"
    script.write_text("", encoding="utf-8")
    assert makemore_py.find({"MAKEMORE_PY": str(script)}) == script
    assert makemore_py.find({"MAKEMORE_PY": str(tmp_path / "absent.py")}) is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert makemore_py.find({}) is None
    cached = tmp_path / ".cache" / "makemore-py" / "makemore.py"
    cached.parent.mkdir(parents=True)
    cached.write_text("", encoding="utf-8")
    assert makemore_py.find({}) == cached


def test_makemore_setting_is_32_words(tiny_data):
    window = next(m for m, cls in MODELS.items() if issubclass(cls, WindowModel) and cls.trainable)
    per_item = tiny_data.train.num_targets / len(tiny_data.train)
    assert words_batch(tiny_data, window) == round(32 * per_item)
    assert makemore_config("mlp", tiny_data).train.batch_size == round(32 * per_item)


def test_makemore_setting_matches_makemore_pys_architectures(tiny_data):
    """Only makemore.py's transformer has 4 layers and heads; its recurrent nets have one layer, none has dropout."""
    expected = {"transformer": {"n_layer": 4, "n_head": 4, "n_embd": 64, "dropout": 0.0},
                "rnn": {"n_layer": 1, "n_embd": 64, "n_embd2": 64, "dropout": 0.0},
                "gru": {"n_layer": 1, "n_embd": 64, "n_embd2": 64, "dropout": 0.0}}
    for name, sizes in expected.items():
        if name in MODELS:
            model = vars(makemore_config(name, tiny_data).model)
            assert {k: model[k] for k in sizes} == sizes, name


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
    runs = saved(tmp_path, "speedrun")["runs"]
    targets = {r["config"]: r["target"] for r in runs}
    assert targets == {"configs/speedrun.yaml": 2.0, "configs/speedrun-1.95.yaml": 1.95}
    for run in runs:
        assert positive(run["wall_seconds"]) and positive(run["dev_nll"]) and run["final_step"] == 20
        assert run["reached"] == (run["dev_nll"] <= run["target"])


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
