"""Training throughput of every registered model, at its shipped config and at makemore.py's setting.

A step is the real training loop's step (batch draw, forward, backward, AdamW, bookkeeping), timed by
an observer the loop calls once a step; the median over the measured steps is reported. FLOPs a step
come from torch.utils.flop_counter on one forward + backward, so MFU = FLOP/s / measured matmul peak.
At makemore.py's setting, each model makemore.py also has is trained by makemore.py itself right
after ours, in the same run, with as many threads (benchmarks/makemore_py.py): the speed-up is the
ratio of the two measured target-character rates, never a remembered figure.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from makemore.config import Config
from makemore.data import Dataset
from makemore.models import MODELS, Model, create_model
from makemore.train import Batches, train

from . import bench_matmul, makemore_py
from .common import (
    NAMES,
    Enough,
    StepTimer,
    cli_main,
    cpu_busy,
    fmt,
    is_sequence,
    load_names,
    makemore_config,
    median,
    shipped_config,
    table,
    target_chars_per_step,
    torch_threads,
    write_result,
)

SETTINGS = ("shipped", "makemore")
BUSY = 0.1  # share of the cores other work may take before a speed-up is flagged as unreliable
NO_EVAL = 10**9  # neither dev evaluation nor the end of training happens while a step is being timed


def step_flops(model: Model, data: Dataset, cfg: Config) -> int:
    """FLOPs of one training step's forward and backward, counted by torch's flop counter."""
    x, y = Batches(data.train, model, cfg.train.batch_size, cfg.seed).next()
    counter = FlopCounterMode(display=False)
    with counter:
        _, loss = model(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_steps(model: Model, data: Dataset, cfg: Config, warmup: int, steps: int, seconds: float) -> list[float]:
    """Seconds of each measured training step, run by the real loop with evaluation pushed out of reach."""
    timer = StepTimer(warmup, max_steps=steps, min_steps=max(5, steps // 10), seconds=seconds)
    cfg.train.max_steps = cfg.train.eval_interval = NO_EVAL
    cfg.train.target_loss = None
    with tempfile.TemporaryDirectory() as work_dir:
        try:
            train(model, data, cfg, Path(work_dir), progress=False, write=lambda message: None, observer=timer)
        except Enough:
            pass
    return timer.step_seconds()


def measure(model_type: str, setting: str, data: Dataset, peak_gflops: float, quick: bool) -> dict:
    """Throughput, FLOPs and MFU of one model at one setting."""
    cfg = shipped_config(model_type) if setting == "shipped" else makemore_config(model_type, data)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length)
    kind = "sequence" if is_sequence(model_type) else "window"
    row = {"model": model_type, "setting": setting, "kind": kind, "params": model.num_params(),
           "batch_size": cfg.train.batch_size, "model_config": vars(cfg.model).copy(),
           "compile": cfg.train.compile, "makemore_py": None, "speedup_vs_makemore_py": None}
    if not model.trainable:
        return {**row, "trainable": False}  # a count model has no training step; see bench_data's fit times
    flops = step_flops(model, data, cfg)
    warmup, steps, seconds = (2, 8, 0.5) if quick else (10, 400, 3.0)
    with torch_threads(cfg.train.threads) as threads:  # a config may pin its thread count, as wavenet's does
        times = time_steps(model, data, cfg, warmup, steps, seconds)
    sec = median(times)
    chars = target_chars_per_step(model_type, cfg.train.batch_size, data)
    achieved = flops / sec / 1e9 if flops else None  # None: no matmul at all (e.g. a table lookup), so no MFU
    return {**row, "trainable": True, "threads": threads, "steps_timed": len(times), "ms_per_step": 1e3 * sec,
            "steps_per_s": 1 / sec, "target_chars_per_step": chars, "target_chars_per_s": chars / sec,
            "flops_per_step": flops, "gflops_per_s": achieved, "mfu": achieved / peak_gflops if achieved else None}


def beside_makemore_py(row: dict, script, input: str | Path, quick: bool) -> str | None:
    """Time makemore.py's own model at the row's thread count and add it and the speed-up to the row.

    makemore.py runs twice, with its default 4 data-loader processes and with none (they share the
    cores with its training threads), and the faster run counts. Returns a one-line note when it
    could not be measured; then the row keeps no speed-up.
    """
    steps, warmup = (30, 10) if quick else (600, 100)
    try:
        runs = [makemore_py.measure(script, row["model"], input, row["threads"], steps, warmup, workers)
                for workers in ((None,) if quick else (None, 0))]
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"{row['model']}: {e}"
    ref = min(runs, key=lambda r: r["ms_per_step"])
    row["makemore_py"] = {**ref, "runs": runs}
    row["speedup_vs_makemore_py"] = row["target_chars_per_s"] / ref["target_chars_per_s"]
    return None


def busy_note(rows: list[dict]) -> list[str]:
    """One line naming the pairs (ours, makemore.py) timed while other work kept the machine busy."""
    busy = [(r["model"], max(b for b in r["cpu_busy_before"] if b is not None)) for r in rows
            if any(b is not None and b > BUSY for b in r.get("cpu_busy_before", []))]
    if not busy:
        return []
    return [f"Other work kept the machine up to {100 * max(b for _, b in busy):.0f}% busy around the timing of "
            f"{', '.join(m for m, _ in busy)} and makemore.py's: those speed-ups are unreliable; rerun on a quiet "
            f"machine."]


def render(rows: list[dict], peak: float, notes: list[str]) -> str:
    """Throughput and MFU as one Markdown table, with makemore.py's figures from the same run."""
    out = []
    for r in rows:
        if not r["trainable"]:
            out.append([r["model"], r["setting"], "—", "—", "", "count model: fitted in one pass (see Data)",
                        "", "", "", "", "", "", ""])
            continue
        ref = r["makemore_py"]
        out.append([r["model"], r["setting"], f"{r['params']:,}", r["batch_size"], r["threads"],
                    fmt(r["ms_per_step"], 2), fmt(r["steps_per_s"], 0), fmt(r["target_chars_per_s"], 0),
                    fmt(ref["ms_per_step"], 2) if ref else "—", fmt(ref["target_chars_per_s"], 0) if ref else "—",
                    fmt(r["speedup_vs_makemore_py"]) + "×" if ref else "—", fmt(r["gflops_per_s"], 2),
                    f"{100 * r['mfu']:.2f}%" if r["mfu"] else "— (no matmul)"])
    head = ["model", "setting", "params", "batch", "threads", "ms/step (median)", "steps/s", "target chars/s",
            "makemore.py ms/step", "makemore.py chars/s", "speed-up", "GFLOP/s", "MFU"]
    text = table(head, out) + f"\n\nMFU against the measured fp32 matmul peak of {peak:.1f} GFLOP/s."
    return text + "".join(f"\n\n{n}" for n in notes)


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        peak_gflops: float | None = None, models: list[str] | None = None, **_) -> dict:
    """Every registered model (or those named) at both settings; makemore.py beside ours where it has the model."""
    data = load_names(input)
    peak = peak_gflops or bench_matmul.run(quick, results_dir)["peak_gflops"]
    script = makemore_py.find()
    notes = [] if script else [makemore_py.HOW_TO_GET]
    rows = []
    for name in models or MODELS:
        for setting in SETTINGS:
            pair = script and setting == "makemore" and name in makemore_py.TYPES
            wait = 0.1 if quick else 0.5
            busy = [cpu_busy(wait)] if pair else []  # a ratio needs both sides timed on an equally quiet machine
            row = measure(name, setting, data, peak, quick)
            if pair and row["trainable"]:
                busy.append(cpu_busy(wait))
                notes += [n for n in [beside_makemore_py(row, script, input or NAMES, quick)] if n]
                row["cpu_busy_before"] = busy
            rows.append(row)
    notes += busy_note(rows)
    result = {"peak_gflops": peak, "input": str(input or "names.txt"), "quick": quick, "rows": rows,
              "makemore_py": str(script) if script else None, "notes": notes}
    result["table"] = render(rows, peak, notes)
    write_result("train", result, results_dir)
    return result


def main() -> None:
    cli_main(run, __doc__)


if __name__ == "__main__":
    main()
