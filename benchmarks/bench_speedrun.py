"""Speedruns: the real CLI with each configs/speedrun*.yaml, wall clock from its start to its exit.

configs/speedrun.yaml stops at dev NLL <= 2.00, configs/speedrun-1.95.yaml at <= 1.95; each target is
the config's own train.target_loss.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from makemore.runs import build_config

from .common import CONFIGS, NAMES, fmt, run_cli, table, write_result

CONFIGS_RUN = sorted(CONFIGS.glob("speedrun*.yaml"))
CONFIG = CONFIGS / "speedrun.yaml"


def speedrun(input: str | Path, extra: list[str] | None = None, timeout: float = 900, config: Path = CONFIG) -> dict:
    """One run of the real CLI: wall seconds from spawning it to its exit, and its results.json."""
    target = build_config(str(config)).train.target_loss
    run = run_cli(config, input, extra, timeout)
    return {**run, "config": f"configs/{config.name}", "target": target, "reached": run["dev_nll"] <= target}


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        repeats: int = 1, models: list[str] | None = None, **_) -> dict:
    """Run each speedrun `repeats` times; quick mode cuts them to a few steps (a smoke run, no target)."""
    extra = ["--max-steps", "20", "--eval-interval", "10"] if quick else None
    configs = [c for c in CONFIGS_RUN if not models or c.stem in models]
    runs = [speedrun(input or NAMES, extra, config=c) for c in configs for _ in range(repeats)]
    shown = ["makemore", "--config", "configs/<speedrun>.yaml", "--input", "../shared/data/names.txt",
             "--work-dir", "<tmp>", "--no-progress", "--overwrite", *(extra or [])]
    result = {"command": " ".join(shown), "configs": {c.name: c.read_text(encoding="utf-8") for c in configs},
              "quick": quick, "runs": runs}
    rows = [[f"`{r['config']}`", r["model"], f"{r['params']:,}", r["best_step"], f"≤ {r['target']}",
             fmt(r["dev_nll"], 4), fmt(r["train_seconds"], 1), fmt(r["wall_seconds"], 1),
             "yes" if r["reached"] else "no"] for r in runs]
    result["table"] = table(["config", "model", "params", "steps", "target", "dev NLL", "training s",
                             "wall s (start to exit)", "reached"], rows)
    write_result("speedrun", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--models", nargs="*", help="only these speedrun configs (file stems, e.g. speedrun-1.95)")
    args = p.parse_args()
    print(run(args.quick, repeats=args.repeats, models=args.models)["table"])


if __name__ == "__main__":
    main()
