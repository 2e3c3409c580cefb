"""Sweeps: a base config plus a grid or a list of overrides, trained one run after another.

A sweep file (YAML):

    base: ../mlp.yaml            # a config file (relative to this file, else to the cwd) or an inline mapping
    work_dir: runs/mlp-sweep     # each run goes to a folder below this one
    overrides: {train.max_steps: 3000}   # applied to every run
    grid:                        # every combination ...
      model.n_embd: [10, 24]
      train.lr: [0.01, 0.003]
    # runs: [{model.n_embd: 10}, {model.n_embd: 24, train.lr: 0.01}]   # ... or an explicit list

Precedence: defaults < base < overrides < the command line's flags (for every run; a key the sweep
varies cannot be set there) < each run's varied values. Every run's config is resolved before any
training, so all problems are reported at once. A run
folder that holds results.json is finished and skipped; one with last.pt only is resumed; so an
interrupted sweep continues where it stopped.

With --jobs J, J runs train at once, each in its own process (`makemore sweep FILE --only RUN`, so each
runs exactly the code of a one-at-a-time sweep), the CPU threads divided among them; a run that fails is
marked in the table and the others go on. Each process's output goes to SWEEP_DIR/logs/RUN.log.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import config as C
from . import configfile
from .compare import RESULTS, by_dev_nll, markdown_table, result_row, write_csv
from .output import dumps, shorten
from .runs import DIVERGED, RunInUse, build_config, train_run
from .train import TrainingDiverged

SWEEP_KEYS = ("base", "grid", "runs", "work_dir", "overrides")
# settings that may differ between the first attempt and a resumed sweep without changing its results
FREE_KEYS = ("work_dir", "train.device", "train.threads", "train.compile", "train.log_interval", "train.ddp_timeout",
             "train.eval_samples", "sample")


@dataclass
class SweepRun:
    """One combination: its folder name, the values it varies, its resolved config."""

    name: str
    values: dict
    cfg: C.Config


@dataclass
class Sweep:
    """A loaded sweep: where it writes, which keys it varies, and its runs in order."""

    path: Path
    root: Path
    keys: list[str]
    runs: list[SweepRun]


def dotted_get(raw: dict, key: str):
    """raw['a']['b'] for key 'a.b' (None when absent)."""
    node = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _base(value, sweep_path: Path, errors: list[str]) -> dict:
    """The base config: an inline mapping, or a YAML file relative to the sweep file, else to the cwd."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        errors.append(f"base must be a config file path or a mapping, got {shorten(value)}")
        return {}
    candidates = [sweep_path.parent / value, Path(value)]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        errors.append(f"base config {value} not found (looked in {sweep_path.parent} and the current folder)")
        return {}
    return configfile.load_yaml(path)


def _combinations(raw: dict, errors: list[str]) -> list[dict]:
    """Every override set of the sweep: the grid's product, or the runs list as given."""
    grid, runs = raw.get("grid"), raw.get("runs")
    if (grid is None) == (runs is None):
        errors.append("a sweep needs exactly one of grid (key: [values]) or runs (a list of {key: value})")
        return []
    if grid is not None:
        if not isinstance(grid, dict) or not grid:
            errors.append("grid must be a mapping of dotted keys to lists of values, e.g. model.n_embd: [10, 24]")
            return []
        bad = [k for k, v in grid.items() if not isinstance(v, list) or not v]
        if bad:
            errors.append(f"grid values must be non-empty lists: {', '.join(bad)}")
            return []
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        errors.append("runs must be a non-empty list of mappings of dotted keys to values")
        return []
    return [dict(r) for r in runs]


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_value_text(v) for v in value)
    return str(value)


def run_names(combos: list[dict]) -> list[str]:
    """Folder names like 'n_embd=10,lr=0.01': the last part of each key, unless two keys share it."""
    keys = list(dict.fromkeys(k for combo in combos for k in combo))
    last = [k.rsplit(".", 1)[-1] for k in keys]
    short = {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}
    names, seen = [], {}
    for i, combo in enumerate(combos):
        name = ",".join(f"{short[k]}={_value_text(v)}" for k, v in combo.items()) or f"run{i}"
        name = re.sub(r"[^\w.,=+-]", "_", name)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names


def load_sweep(path: str | Path, cli_overrides: dict | None = None) -> Sweep:
    """Read a sweep file and resolve every run's config; raise one ConfigError listing every problem."""
    path = Path(path)
    raw = configfile.load_yaml(path)
    cli = dict(cli_overrides or {})
    errors = [f"{path}: unknown key {k} (valid keys: {', '.join(SWEEP_KEYS)})" for k in raw if k not in SWEEP_KEYS]
    base = _base(raw.get("base"), path, errors)
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        errors.append("overrides must be a mapping of dotted keys to values, e.g. train.max_steps: 3000")
        overrides = {}
    combos = _combinations(raw, errors)
    keys = list(dict.fromkeys(k for combo in combos for k in combo))
    clash = sorted(set(cli) & set(keys))
    if clash:
        errors.append(f"the command line sets {', '.join(clash)}, which the sweep varies: drop it from the command")
    root = Path(cli.pop("work_dir", None) or raw.get("work_dir") or Path("runs") / path.stem)
    runs, problems = [], {}  # problem -> runs that have it, so a base mistake is reported once
    for name, combo in zip(run_names(combos), combos):
        settings = {**overrides, **cli, **combo, "work_dir": str(root / name)}  # the varied values win
        try:
            runs.append(SweepRun(name, combo, build_config(base=copy.deepcopy(base), overrides=settings)))
        except C.ConfigError as e:
            for problem in str(e).split("; "):
                problems.setdefault(problem, []).append(name)
    for problem, names in problems.items():
        errors.append(f"{'every run' if len(names) == len(combos) else 'run ' + ', '.join(names)}: {problem}")
    if errors:
        raise C.ConfigError("; ".join(errors))
    return Sweep(path, root, keys, runs)


def _comparable(raw: dict) -> dict:
    """A config as data, without the settings that may change when a sweep is resumed."""
    raw = copy.deepcopy(raw)
    for key in FREE_KEYS:
        *parents, last = key.split(".")
        node = dotted_get(raw, ".".join(parents)) if parents else raw
        if isinstance(node, dict):
            node.pop(last, None)
    return raw


def stale_runs(sweep: Sweep) -> list[str]:
    """Run folders written by an earlier sweep whose config differs from what this sweep asks for."""
    out = []
    for run in sweep.runs:
        saved = Path(run.cfg.work_dir) / "config.yaml"
        if run_state(run) != "new" and saved.is_file():
            if _comparable(configfile.load_yaml(saved)) != _comparable(yaml.safe_load(C.dump_yaml(run.cfg))):
                out.append(str(Path(run.cfg.work_dir)))
    return out


def run_state(run: SweepRun) -> str:
    """'done' (results.json), 'diverged' (marker), 'partial' (last.pt to resume from) or 'new'."""
    folder = Path(run.cfg.work_dir)
    if (folder / RESULTS).is_file():
        return "done"
    if (folder / DIVERGED).is_file():
        return "diverged"
    return "partial" if (folder / "last.pt").is_file() else "new"


def table_rows(sweep: Sweep, failed: dict[str, str] | None = None) -> list[dict]:
    """One row a run, in sweep order: the varied values (as resolved), results, and the best run marked.

    failed: {run name: why} of the runs whose process failed (sweeps with --jobs).
    """
    rows = []
    for run in sweep.runs:
        state = run_state(run)
        row = result_row(run.cfg.work_dir, run.name) if state == "done" else {"run": run.name}
        resolved = C.to_dict(run.cfg)
        row.update({k: dotted_get(resolved, k) for k in sweep.keys})
        row["note"] = {"done": "", "diverged": "diverged", "partial": "unfinished", "new": "not run"}[state]
        if state != "done" and run.name in (failed or {}):
            row["note"] = f"failed: {failed[run.name]}"
        rows.append(row)
    finished = [r for r in rows if not by_dev_nll(r)[0]]
    if finished:
        min(finished, key=by_dev_nll)["note"] = "best"
    return rows


def table_columns(sweep: Sweep) -> list[str]:
    return ["run", *sweep.keys, "params", "steps", "train_nll", "dev_nll", "wall_s", "note"]


def write_tables(sweep: Sweep, failed: dict[str, str] | None = None) -> tuple[str, Path, Path]:
    """Write results.csv and results.md into the sweep folder; returns the Markdown and both paths."""
    rows, columns = table_rows(sweep, failed), table_columns(sweep)
    sweep.root.mkdir(parents=True, exist_ok=True)
    md = markdown_table(rows, columns)
    csv_path, md_path = sweep.root / "results.csv", sweep.root / "results.md"
    write_csv(rows, columns, csv_path)
    md_path.write_text(f"Sweep `{sweep.path}`, best run marked.\n\n{md}\n", encoding="utf-8")
    return md, csv_path, md_path


def check_stale(sweep: Sweep) -> None:
    """Refuse to mix this sweep's runs with those of another config in the same folders."""
    stale = stale_runs(sweep)
    if stale:
        raise C.ConfigError(f"these run folders hold runs of a different config: {', '.join(stale)}; "
                            f"delete them or give the sweep another --work-dir")


def to_train(sweep: Sweep, write=print, only: str | None = None) -> list[tuple[int, SweepRun]]:
    """The runs not finished yet (only the one named, if given), numbered; says which are skipped."""
    if only is not None and only not in [run.name for run in sweep.runs]:
        raise C.ConfigError(f"--only {only}: no such run in {sweep.path} (its runs: "
                            f"{', '.join(run.name for run in sweep.runs)})")
    out = []
    for i, run in enumerate(sweep.runs, 1):
        state = run_state(run)
        if only is not None and run.name != only:
            continue
        if state in ("done", "diverged"):
            write(f"[{i}/{len(sweep.runs)}] {run.name}: {'finished' if state == 'done' else 'diverged'} already, "
                  f"skipped")
            continue
        out.append((i, run))
    return out


def run_sweep(sweep: Sweep, progress: bool = True, write=print, only: str | None = None) -> bool:
    """Train every run not finished yet (or only the one named), one after another; False when one was interrupted."""
    check_stale(sweep)
    total = len(sweep.runs)
    for i, run in to_train(sweep, write, only):
        state = run_state(run)
        where = f"[{i}/{total}] {run.name}"
        write(f"{where}: {'resuming' if state == 'partial' else 'training'} into {run.cfg.work_dir}")
        try:
            result = train_run(run.cfg, resume=state == "partial", progress=progress, write=write)
        except RunInUse as e:  # another sweep (or a manual run) is training it: leave it to that process
            write(f"{where}: {e}; skipped")
            continue
        except TrainingDiverged as e:
            marker = Path(run.cfg.work_dir) / DIVERGED
            marker.write_text(dumps({"error": str(e)}) + "\n", encoding="utf-8")
            write(f"{where}: {e}")
            continue
        if result.get("stopped") == "interrupted":
            return False
    return True


def job_threads(jobs: int, cores: int | None = None) -> int:
    """CPU threads each of jobs parallel runs gets: the cores divided among them, at least one."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // jobs)


def run_parallel(sweep: Sweep, jobs: int, argv: list[str], write=print) -> tuple[bool, dict[str, str]]:
    """Train the runs not finished yet, jobs at a time, each in its own process; (not interrupted, {run: why failed}).

    argv: this sweep's command line (after `makemore`); each run's process gets it with --only RUN, and
    --threads (the cores divided among the jobs) unless the run's config sets its threads.
    """
    check_stale(sweep)
    waiting, total = to_train(sweep, write), len(sweep.runs)
    threads = job_threads(jobs)
    logs = sweep.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[subprocess.Popen, tuple[str, str, Path]] = {}  # process: (where, run name, log)
    failed: dict[str, str] = {}
    interrupted = False
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                i, run = waiting.pop(0)
                cmd = [sys.executable, "-m", "makemore", *argv, "--only", run.name, "--no-progress"]
                n = run.cfg.train.threads or threads
                if not run.cfg.train.threads:
                    cmd += ["--threads", str(n)]
                log = logs / f"{run.name}.log"
                with open(log, "w", encoding="utf-8") as out:  # the child holds its own copy of the file
                    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "OMP_NUM_THREADS": str(n), "PYTHONUNBUFFERED": "1"})
                running[proc] = (f"[{i}/{total}] {run.name}", run.name, log)
                write(f"[{i}/{total}] {run.name}: training in process {proc.pid} ({n} thread{'s' * (n > 1)}), "
                      f"log {log}")
            time.sleep(0.1)
            for proc in [p for p in running if p.poll() is not None]:
                where, name, log = running.pop(proc)
                if proc.returncode == 130:
                    interrupted = True
                    write(f"{where}: interrupted; its last checkpoint is kept")
                elif proc.returncode != 0:
                    failed[name] = failure(log, proc.returncode)
                    write(f"{where}: failed ({failed[name]}); the others go on")
                else:
                    write(f"{where}: {'diverged' if run_state_of(sweep, name) == 'diverged' else 'finished'}")
    except KeyboardInterrupt:  # the runs got the Ctrl-C too: each saves its checkpoint; wait for them
        interrupted = True
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in running:
            proc.wait()
    return not interrupted, failed


def run_state_of(sweep: Sweep, name: str) -> str:
    return run_state(next(run for run in sweep.runs if run.name == name))


def failure(log: Path, code: int) -> str:
    """Why a run's process failed: its one-line error, else its exit status."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    errors = [line.removeprefix("makemore: error: ") for line in lines if line.startswith("makemore: error:")]
    return errors[-1] if errors else f"exit status {code}, see {log}"
