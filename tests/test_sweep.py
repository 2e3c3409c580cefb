"""Sweeps: a table with one row a run and the best marked; resuming skips finished runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from makemore import sweep as S
from makemore.cli import main
from makemore.config import ConfigError

TINY_BASE = {"model": {"type": "mlp", "block_size": 2, "n_embd": 4, "n_embd2": 16},
             "train": {"max_steps": 20, "eval_interval": 10, "log_interval": 5, "batch_size": 32,
                       "eval_samples": 0, "warmup_steps": 0}}


def write_sweep(tmp_path: Path, tiny_file, **extra) -> Path:
    spec = {"base": {**TINY_BASE, "data": {"input": str(tiny_file)}}, "work_dir": str(tmp_path / "sweep"),
            "grid": {"model.n_embd": [4, 8]}, **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_two_run_sweep_writes_table_then_resumes_without_retraining(tmp_path, tiny_file, monkeypatch):
    sw = S.load_sweep(write_sweep(tmp_path, tiny_file))
    assert [r.name for r in sw.runs] == ["n_embd=4", "n_embd=8"]
    log: list[str] = []
    assert S.run_sweep(sw, progress=False, write=log.append)
    _, csv_path, md_path = S.write_tables(sw)
    rows = read_csv(csv_path)
    assert [r["run"] for r in rows] == ["n_embd=4", "n_embd=8"]
    assert [r["model.n_embd"] for r in rows] == ["4", "8"]
    assert all(float(r["dev_nll"]) > 0 and int(r["steps"]) == 20 for r in rows)
    best = [r for r in rows if r["note"] == "best"]
    assert len(best) == 1 and float(best[0]["dev_nll"]) == min(float(r["dev_nll"]) for r in rows)
    assert "n_embd=8" in md_path.read_text(encoding="utf-8")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(S, "train_run", no_training)
    log.clear()
    assert S.run_sweep(S.load_sweep(sw.path), progress=False, write=log.append)
    assert sum("finished already, skipped" in line for line in log) == 2


def test_partial_run_is_resumed_and_stale_run_refused(tmp_path, tiny_file):
    path = write_sweep(tmp_path, tiny_file, runs=[{"model.n_embd": 4}])
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    del spec["grid"]
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    sw = S.load_sweep(path)
    S.run_sweep(sw, progress=False, write=lambda m: None)
    results = Path(sw.runs[0].cfg.work_dir) / "results.json"
    results.unlink()  # as if interrupted after its last checkpoint
    assert S.run_state(sw.runs[0]) == "partial"
    log: list[str] = []
    S.run_sweep(S.load_sweep(path), progress=False, write=log.append)
    assert results.is_file() and any("resuming" in line for line in log)

    changed = S.load_sweep(path, {"train.max_steps": 40})  # same folders, another config
    with pytest.raises(ConfigError, match="different config"):
        S.run_sweep(changed, progress=False, write=lambda m: None)


def test_a_run_another_process_is_training_is_skipped(tmp_path, tiny_file):
    from makemore.runs import RunLock

    sw = S.load_sweep(write_sweep(tmp_path, tiny_file))
    busy = Path(sw.runs[0].cfg.work_dir)
    busy.mkdir(parents=True)
    log: list[str] = []
    with RunLock(busy):  # as another sweep over the same file would hold it
        S.run_sweep(sw, progress=False, write=log.append)
    assert any("n_embd=4: " in line and "being trained by another process" in line for line in log)
    assert [S.run_state(r) for r in sw.runs] == ["new", "done"]


def test_every_problem_is_reported_before_training(tmp_path, tiny_file):
    path = write_sweep(tmp_path, tiny_file, grid={"model.n_embd": [4, -1], "model.bogus": [1]})
    with pytest.raises(ConfigError) as e:
        S.load_sweep(path, {"model.n_embd": 3})
    message = str(e.value)
    assert "the command line sets model.n_embd" in message
    assert "unknown key model.bogus" in message and "every run" in message
    assert "model.n_embd must be at least 1" in message
    assert not (tmp_path / "sweep").exists()


def test_command_line_overrides_apply_to_every_run(tmp_path, tiny_file):
    sw = S.load_sweep(write_sweep(tmp_path, tiny_file), {"train.max_steps": 7, "work_dir": str(tmp_path / "other")})
    assert [r.cfg.train.max_steps for r in sw.runs] == [7, 7]
    assert all(Path(r.cfg.work_dir).parent == tmp_path / "other" for r in sw.runs)


def test_run_names_are_short_unique_and_safe():
    names = S.run_names([{"model.n_embd": 4, "train.lr": 0.01}, {"model.n_embd": 4, "train.lr": 0.01},
                         {"data.seed": 1, "seed": 2}, {"data.input": "a/b.txt"}])
    assert names[:2] == ["n_embd=4,lr=0.01", "n_embd=4,lr=0.01-2"]
    assert names[2] == "data.seed=1,seed=2"
    assert "/" not in names[3]


def test_cli_dry_run_lists_runs_and_shipped_sweep_loads(tmp_path, tiny_file, capsys):
    assert main(["sweep", str(write_sweep(tmp_path, tiny_file)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and out.count("(new)") == 2
    shipped = sorted((Path(__file__).parent.parent / "configs" / "sweeps").glob("*.yaml"))
    assert shipped
    for path in shipped:
        assert S.load_sweep(path, {"data.input": str(tiny_file)}).runs


@pytest.mark.parametrize("spec,message", [
    ({"grid": {"model.n_embd": [4]}, "bogus": 1}, "unknown key bogus (valid keys: base, grid, runs"),
    ({"base": 3, "grid": {"model.n_embd": [4]}}, "base must be a config file path or a mapping, got 3"),
    ({"base": "nope.yaml", "grid": {"model.n_embd": [4]}}, "base config nope.yaml not found"),
    ({}, "a sweep needs exactly one of grid"),
    ({"grid": {"a": [1]}, "runs": [{"a": 1}]}, "a sweep needs exactly one of grid"),
    ({"grid": [1, 2]}, "grid must be a mapping of dotted keys to lists of values"),
    ({"grid": {"model.n_embd": 4}}, "grid values must be non-empty lists: model.n_embd"),
    ({"runs": {"model.n_embd": 4}}, "runs must be a non-empty list of mappings"),
    ({"grid": {"model.n_embd": [4]}, "overrides": [1]}, "overrides must be a mapping of dotted keys to values"),
])
def test_a_bad_sweep_file_is_one_line_naming_the_problem(spec, message, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        S.load_sweep(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_diverged_run_is_marked_and_not_retried(tmp_path, tiny_file):
    sw = S.load_sweep(write_sweep(tmp_path, tiny_file, grid={"train.lr": [1e30]}))
    log: list[str] = []
    assert S.run_sweep(sw, progress=False, write=log.append)
    assert S.run_state(sw.runs[0]) == "diverged" and any("the loss became" in line for line in log)
    log.clear()
    assert S.run_sweep(S.load_sweep(sw.path), progress=False, write=log.append)
    assert any("diverged already, skipped" in line for line in log)
    assert [r["note"] for r in S.table_rows(sw)] == ["diverged"]


def test_jobs_train_runs_at_once_in_their_own_processes_and_a_failed_run_does_not_stop_the_others(
        tmp_path, tiny_file, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # the runs' processes import this checkout
    # the failing run first: with 2 jobs, the third run starts only after it failed
    path = write_sweep(tmp_path, tiny_file, runs=[{"data.input": str(tmp_path / "missing.txt")}, {"model.n_embd": 4},
                                                  {"model.n_embd": 8}])
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    del spec["grid"]
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    serial = S.load_sweep(path, {"work_dir": str(tmp_path / "serial")})
    S.run_sweep(S.Sweep(serial.path, serial.root, serial.keys, serial.runs[1:2]), progress=False,
                write=lambda m: None)

    assert main(["sweep", str(path), "--jobs", "2"]) == 1
    out, err = capsys.readouterr()
    assert out.count("training in process") == 3 and "(1 thread)" in out
    rows = {r["run"]: r for r in read_csv(tmp_path / "sweep" / "results.csv")}
    assert rows["input=" + str(tmp_path / "missing.txt").replace("/", "_")]["note"].startswith(
        "failed: input file") and "does not exist" in err + out
    assert float(rows["n_embd=8"]["dev_nll"]) > 0
    for run in serial.runs[1:2]:  # the same results as one run after another
        assert float(rows[run.name]["dev_nll"]) == pytest.approx(
            float(S.result_row(run.cfg.work_dir, run.name)["dev_nll"]), abs=1e-6)
    assert err.count("\n") == 1 and "1 of 3 runs failed" in err
    assert (tmp_path / "sweep" / "logs" / "n_embd=4.log").is_file()

    assert main(["sweep", str(path), "--jobs", "2"]) == 1  # finished runs are skipped, the failed one retried
    out = capsys.readouterr().out
    assert out.count("finished already, skipped") == 2 and out.count("training in process") == 1


def test_jobs_must_be_positive(tmp_path, tiny_file, capsys):
    assert main(["sweep", str(write_sweep(tmp_path, tiny_file)), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--jobs 0" in err and err.count("\n") == 1
    assert S.job_threads(2, cores=2) == 1 and S.job_threads(3, cores=8) == 2 and S.job_threads(4, cores=2) == 1
