"""Where a training step's time goes: torch.profiler over a few real-loop steps of the slowest model.

The slowest model is the trainable one with the most ms/step at makemore.py's setting in
results/train.json (measured first when there is none).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from makemore.models import create_model
from makemore.train import train

from .common import (
    RESULTS,
    Enough,
    fmt,
    load_names,
    makemore_config,
    shipped_config,
    table,
    torch_threads,
    write_result,
)


class ProfilingObserver:
    """Training-loop observer: profiles steps [warmup, warmup + steps) of the real loop, then stops it."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps
        self.prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)

    def wants(self, step: int) -> bool:
        if step == self.warmup:
            self.prof.start()
        elif step == self.warmup + self.steps:
            self.prof.stop()
            raise Enough
        return False


def slowest(train_result: dict) -> tuple[str, str]:
    """(model, setting) with the most ms/step among the trainable rows, makemore.py's setting preferred."""
    rows = [r for r in train_result["rows"] if r["trainable"]]
    mm = [r for r in rows if r["setting"] == "makemore"] or rows
    top = max(mm, key=lambda r: r["ms_per_step"])
    return top["model"], top["setting"]


def top_level(events) -> list[dict]:
    """Total CPU time of the outermost events, autograd's backward nodes grouped as one."""
    groups: dict[str, float] = defaultdict(float)
    for e in events:
        if e.cpu_parent is not None:
            continue
        name = "backward (autograd engine)" if e.name.startswith("autograd::engine") else e.name
        groups[name] += e.cpu_time_total
    return [{"name": k, "cpu_us": v} for k, v in sorted(groups.items(), key=lambda kv: -kv[1])]


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        model: str | None = None, setting: str = "makemore", **_) -> dict:
    """Profile a few steps; the table ranks ops by self CPU time."""
    train_json = Path(results_dir or RESULTS) / "train.json"
    if model is None:
        if not train_json.exists():
            from . import bench_train
            bench_train.run(quick, results_dir, input)
        model, setting = slowest(json.loads(train_json.read_text(encoding="utf-8")))
    data = load_names(input)
    cfg = makemore_config(model, data) if setting == "makemore" else shipped_config(model)
    cfg.train.max_steps = cfg.train.eval_interval = 10**9
    torch.manual_seed(cfg.seed)
    net = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length)
    warmup, steps = (2, 2) if quick else (10, 5)
    obs = ProfilingObserver(warmup, steps)
    with tempfile.TemporaryDirectory() as work_dir, torch_threads(cfg.train.threads) as threads:
        try:
            train(net, data, cfg, Path(work_dir), progress=False, write=lambda message: None, observer=obs)
        except Enough:
            pass
    averages = obs.prof.key_averages()
    total_self = sum(a.self_cpu_time_total for a in averages)
    ops = sorted(averages, key=lambda a: -a.self_cpu_time_total)[:15]
    rows = [{"op": a.key, "calls_per_step": a.count / steps, "self_cpu_us_per_step": a.self_cpu_time_total / steps,
             "share": a.self_cpu_time_total / total_self} for a in ops]
    phases = top_level(obs.prof.events())
    phase_total = sum(p["cpu_us"] for p in phases)
    result = {"model": model, "setting": setting, "batch_size": cfg.train.batch_size, "threads": threads,
              "steps": steps,
              "self_cpu_us_per_step": total_self / steps, "ops": rows,
              "phases": [{**p, "cpu_us_per_step": p["cpu_us"] / steps, "share": p["cpu_us"] / phase_total}
                         for p in phases[:12]],
              "torch_table": averages.table(sort_by="self_cpu_time_total", row_limit=20)}
    ops_table = table(["op", "calls/step", "self CPU µs/step", "share"],
                      [[r["op"], fmt(r["calls_per_step"], 0), fmt(r["self_cpu_us_per_step"], 0),
                        f"{100 * r['share']:.1f}%"] for r in rows])
    phase_table = table(["outermost event", "CPU µs/step", "share"],
                        [[p["name"], fmt(p["cpu_us_per_step"], 0), f"{100 * p['share']:.1f}%"]
                         for p in result["phases"]])
    result["table"] = (f"{model} at the {setting} setting (batch {cfg.train.batch_size}, {threads} thread"
                       f"{'s' if threads > 1 else ''}), {steps} steps profiled, "
                       f"{fmt(total_self / steps / 1e3, 2)} ms self CPU a step\n\n{phase_table}\n\n{ops_table}")
    write_result("profile", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", help="profile this model instead of the slowest")
    p.add_argument("--setting", default="makemore", choices=["makemore", "shipped"])
    args = p.parse_args()
    print(run(args.quick, model=args.model, setting=args.setting)["table"])


if __name__ == "__main__":
    main()
