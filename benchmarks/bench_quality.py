"""Model quality: every shipped config trained by the real CLI on names.txt, losses, parameters and times."""

from __future__ import annotations

from pathlib import Path

from .common import CONFIGS, NAMES, cli_main, fmt, run_cli, table, write_result

QUICK = ["--max-steps", "20", "--eval-interval", "10"]  # a smoke run: the table's shape, not its figures


def configs(names: list[str] | None = None) -> list[Path]:
    """The shipped experiment configs (configs/*.yaml), or the ones named, in a stable order."""
    paths = sorted(CONFIGS.glob("*.yaml"))
    return [p for p in paths if names is None or p.stem in names]


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        models: list[str] | None = None, **_) -> dict:
    """Train every shipped config once, one after another (timings want a quiet machine)."""
    rows = [{"config": f"configs/{p.name}", **run_cli(p, input or NAMES, QUICK if quick else None)}
            for p in configs(models)]
    shown = "makemore --config configs/<name>.yaml --input ../shared/data/names.txt --work-dir <tmp> --no-progress"
    result = {"command": shown + (" " + " ".join(QUICK) if quick else ""), "quick": quick, "rows": rows}
    result["table"] = table(
        ["config", "model", "params", "steps", "train NLL", "dev NLL", "test NLL", "training s", "wall s"],
        [[f"`{r['config']}`", r["model"], f"{r['params']:,}", r["best_step"] or "— (fitted)", fmt(r["train_nll"], 4),
          fmt(r["dev_nll"], 4), fmt(r["test_nll"], 4), fmt(r["train_seconds"], 1), fmt(r["wall_seconds"], 1)]
         for r in rows])
    write_result("quality", result, results_dir)
    return result


def main() -> None:
    cli_main(run, __doc__)


if __name__ == "__main__":
    main()
