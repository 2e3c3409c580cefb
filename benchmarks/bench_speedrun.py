"""Time to dev NLL <= 2.00: the real CLI with configs/speedrun.yaml, wall clock from its start to its exit."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import CONFIGS, NAMES, REPO, fmt, table, write_result

CONFIG = CONFIGS / "speedrun.yaml"


def command(input: str | Path, work_dir: str | Path, extra: list[str] | None = None) -> list[str]:
    """The speedrun command line, as BENCHMARKS.md gives it (plus a run folder of its own)."""
    return [sys.executable, "-m", "makemore", "--config", str(CONFIG), "--input", str(input),
            "--work-dir", str(work_dir), "--no-progress", "--overwrite", *(extra or [])]


def speedrun(input: str | Path, extra: list[str] | None = None, timeout: float = 300) -> dict:
    """One run: wall seconds from spawning the process to its exit, and what its results.json says."""
    with tempfile.TemporaryDirectory() as work_dir:
        cmd = command(input, work_dir, extra)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"speedrun failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        results = json.loads((Path(work_dir) / "results.json").read_text(encoding="utf-8"))
    evals = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    return {"wall_seconds": wall, "dev_nll": results["dev"]["nll"], "test_nll": results["test"]["nll"],
            "stopped": results["stopped"], "best_step": results["steps"], "final_step": results["final_step"],
            "train_seconds": results["train_seconds"], "run_wall_seconds": results["wall_seconds"],
            "params": results["params"], "model": results["type"], "reached": results["dev"]["nll"] <= 2.0,
            "evaluations": evals}


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        repeats: int = 1, **_) -> dict:
    """Run the speedrun `repeats` times; quick mode cuts it to a few steps (a smoke run, no target)."""
    extra = ["--max-steps", "20", "--eval-interval", "10"] if quick else None
    runs = [speedrun(input or NAMES, extra) for _ in range(repeats)]
    shown = ["makemore", "--config", "configs/speedrun.yaml", "--input", "../shared/data/names.txt",
             "--work-dir", "<tmp>", "--no-progress", "--overwrite", *(extra or [])]
    result = {"command": " ".join(shown), "config": CONFIG.read_text(encoding="utf-8"), "quick": quick,
              "runs": runs, "best_wall_seconds": min(r["wall_seconds"] for r in runs)}
    rows = [[i + 1, r["model"], f"{r['params']:,}", r["best_step"], fmt(r["dev_nll"], 4), fmt(r["train_seconds"], 1),
             fmt(r["wall_seconds"], 1), "yes" if r["reached"] else "no"] for i, r in enumerate(runs)]
    result["table"] = table(["run", "model", "params", "steps", "dev NLL", "training s",
                             "wall s (start to exit)", "dev ≤ 2.00"], rows)
    write_result("speedrun", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    print(run(args.quick, repeats=args.repeats)["table"])


if __name__ == "__main__":
    main()
