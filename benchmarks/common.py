"""What every benchmark shares: paths, configs at the two settings, a step timer, tables and JSON output."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.compare import render_table
from makemore.config import Config
from makemore.data import Dataset, load_dataset
from makemore.models import MODELS, SequenceModel, create_model
from makemore.runs import build_config

REPO = Path(__file__).resolve().parent.parent
NAMES = (REPO / ".." / "shared" / "data" / "names.txt").resolve()  # the standard corpus; never copied in
RESULTS = REPO / "benchmarks" / "results"
CONFIGS = REPO / "configs"

# makemore.py's defaults; block_size 16 is what makemore.py derives from names.txt (longest name + 1).
# Only its transformer reads n_layer and n_head: its RNN, GRU and BoW have one layer. None has dropout.
MAKEMORE_MODEL = {"n_embd": 64, "n_embd2": 64, "block_size": 16}
MAKEMORE_LAYERS = {"transformer": {"n_layer": 4, "n_head": 4}, "rnn": {"n_layer": 1}, "gru": {"n_layer": 1},
                   "bow": {}, "mlp": {}, "nbigram": {}}
MAKEMORE_PY_MODELS = set(MAKEMORE_LAYERS)
MAKEMORE_WORDS = 32  # makemore.py's batch: 32 whole words a step


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with n torch threads (0: leave torch's choice), as `makemore` does for a config's train.threads."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


class Enough(Exception):
    """Raised by an observer to leave the training loop once it has measured enough steps."""


def machine() -> dict:
    """The machine and software a result was measured on."""
    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "arch": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
            "date": datetime.date.today().isoformat()}


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over `seconds` while this process sleeps: other processes' load (None off Linux).

    Two threads on two cores stall on each other when a third process takes a core (small ops get
    20-50x slower), so every result records how busy the machine was just before it was measured.
    """
    def ticks() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = ticks()
        time.sleep(seconds)
        total1, idle1 = ticks()
    except (OSError, IndexError, ValueError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_names(path: str | Path | None = None) -> Dataset:
    """The corpus a benchmark runs on: names.txt unless another file is given (tests use a tiny one)."""
    return load_dataset(path or NAMES, warn=lambda message: None)


def model_fields(model_type: str) -> set[str]:
    """Names of the options a model's config dataclass has."""
    return {f.name for f in dataclasses.fields(MODELS[model_type].Config)}


def shipped_config(model_type: str, overrides: dict | None = None) -> Config:
    """The model's shipped config: configs/<type>.yaml when the repo ships one, else the registry defaults."""
    path = CONFIGS / f"{model_type}.yaml"
    raw = {"model.type": model_type, **(overrides or {})}
    return build_config(str(path) if path.exists() else None, raw)


def is_sequence(model_type: str) -> bool:
    """Whether the model reads whole items (B, T) rather than context windows."""
    return issubclass(MODELS[model_type], SequenceModel)


def words_batch(data: Dataset, model_type: str, words: int = MAKEMORE_WORDS) -> int:
    """Batch size equal to `words` words: whole items for sequence models, their target characters for window ones."""
    if is_sequence(model_type):
        return words
    return round(words * targets_per_item(data))


def targets_per_item(data: Dataset) -> float:
    """Mean target characters of a training item, its end boundary included (7.13 on names.txt)."""
    return data.train.num_targets / len(data.train)


def makemore_config(model_type: str, data: Dataset, overrides: dict | None = None) -> Config:
    """makemore.py's setting: batch of 32 words, n_embd 64, n_embd2 64, block_size 16, where the model has them.

    A model makemore.py also has gets its layers too (the transformer's 4 layers and heads, one
    recurrent layer) and no dropout; the others get only the sizes, on their shipped configs.
    """
    fields = model_fields(model_type)
    sizes = {**MAKEMORE_MODEL, **MAKEMORE_LAYERS.get(model_type, {})}
    if model_type in MAKEMORE_PY_MODELS and "dropout" in fields:
        sizes["dropout"] = 0.0
    keys = [k for k in sizes if k in fields]
    base = {"train.batch_size": words_batch(data, model_type), **(overrides or {})}
    while True:  # drop options the architecture refuses (e.g. a block size it cannot fuse), block size first
        try:
            cfg = shipped_config(model_type, {**{f"model.{k}": sizes[k] for k in keys}, **base})
            # some options are only checked when the model is built
            create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length)
            return cfg
        except ValueError:
            if not keys:
                raise
            keys.remove("block_size" if "block_size" in keys else keys[-1])


def target_chars_per_step(model_type: str, batch_size: int, data: Dataset) -> float:
    """Real characters predicted a step: one a window, or each item's characters plus its end marker."""
    if is_sequence(model_type):
        return batch_size * targets_per_item(data)
    return float(batch_size)


class StepTimer:
    """Training-loop observer: timestamps the start of every step, leaves the loop when it has enough.

    The loop asks observer.wants(step) once a step before the forward pass, so the gaps between calls
    are whole training steps as the real loop runs them (batch, forward, backward, optimizer, logging).
    """

    def __init__(self, warmup: int, max_steps: int, min_steps: int, seconds: float):
        self.warmup, self.max_steps, self.min_steps, self.seconds = warmup, max_steps, min_steps, seconds
        self.stamps: list[float] = []

    def wants(self, step: int) -> bool:
        now = time.perf_counter()
        self.stamps.append(now)
        measured = len(self.stamps) - 1 - self.warmup
        if measured >= self.max_steps or (measured >= self.min_steps and now - self.stamps[self.warmup] > self.seconds):
            raise Enough
        return False

    def step_seconds(self) -> list[float]:
        """Duration of each measured (post-warm-up) step."""
        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:])]
        return gaps[self.warmup:]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table by makemore's one renderer; cells are printed as given (format numbers first)."""
    return render_table(headers, [[str(c) for c in row] for row in rows])


def fmt(x: float | None, digits: int = 1) -> str:
    """A number with thousands separators, or '—' when there is none."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:,.{digits}f}"


def write_result(name: str, result: dict, results_dir: Path | None = None) -> Path:
    """Write results/<name>.json and return its path."""
    out = Path(results_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2) + "\n",
                    encoding="utf-8")
    return path


def run_cli(config: Path, input: str | Path, extra: list[str] | None = None, timeout: float = 1800) -> dict:
    """One run of the real CLI on a config: wall seconds from spawning it to its exit, and its results.json."""
    with tempfile.TemporaryDirectory() as work_dir:
        cmd = [sys.executable, "-m", "makemore", "--config", str(config), "--input", str(input),
               "--work-dir", work_dir, "--no-progress", "--overwrite", *(extra or [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{config.name} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        results = json.loads((Path(work_dir) / "results.json").read_text(encoding="utf-8"))
    evals = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    return {"wall_seconds": wall, "train_nll": results["train"]["nll"], "dev_nll": results["dev"]["nll"],
            "test_nll": results["test"]["nll"], "stopped": results["stopped"], "best_step": results["steps"],
            "final_step": results["final_step"], "train_seconds": results["train_seconds"],
            "run_wall_seconds": results["wall_seconds"], "params": results["params"], "model": results["type"],
            "evaluations": evals}


def cli_main(run, description: str | None) -> None:
    """The command line a benchmark module shares with the others: --quick, --models; prints its table."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps, small inputs")
    p.add_argument("--models", nargs="*", help="only these models (registry names, or config names for quality)")
    args = p.parse_args()
    print(run(args.quick, models=args.models)["table"])
