"""Time to dev NLL <= 2.00: the real CLI with configs/speedrun.yaml, wall clock from its start to its exit."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CONFIGS, NAMES, fmt, run_cli, table, write_result

CONFIG = CONFIGS / "speedrun.yaml"


def speedrun(input: str | Path, extra: list[str] | None = None, timeout: float = 300) -> dict:
    """One run of the real CLI: wall seconds from spawning it to its exit, and its results.json."""
    run = run_cli(CONFIG, input, extra, timeout)
    return {**run, "reached": run["dev_nll"] <= 2.0}


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
