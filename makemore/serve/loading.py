"""RUN_DIR arguments to named runs: a folder holding a run serves it, a folder of runs every finished run in it."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from ..api import Run, load
from ..compare import RESULTS, read_results
from ..config import ConfigError
from ..mix import MIXTURE_FILE

FINISHED = ("model.pt", MIXTURE_FILE)  # what a finished run folder holds


def is_run(path: Path) -> bool:
    """A finished run folder: it holds model.pt (a trained run) or mixture.json (a mixture)."""
    return path.is_dir() and any((path / name).is_file() for name in FINISHED)


def run_folders(paths: list[str | Path]) -> list[Path]:
    """The run folders among paths, in order: each path that is a run, else the runs directly inside it."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigError(f"{path} does not exist: give run folders (holding model.pt) or folders of them")
        if is_run(path):
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if is_run(p)) if path.is_dir() else []
        if not inside:
            raise ConfigError(f"no finished run in {path} (a run folder holds model.pt or mixture.json): "
                              f"train one first, or give its folder")
        found += inside
    return list(dict.fromkeys(p.resolve() for p in found))


def names(folders: list[Path]) -> list[str]:
    """A unique name a folder: its own name, or parent/name where two folders share a name."""
    own = [f.name for f in folders]
    out = [f"{f.parent.name}/{f.name}" if own.count(f.name) > 1 else f.name for f in folders]
    if len(set(out)) < len(out):
        clash = sorted({n for n in out if out.count(n) > 1})
        raise ConfigError(f"two runs would both be named {clash[0]}: serve folders with different names")
    return out


def load_runs(paths: list[str | Path], device: str = "auto") -> dict[str, Run]:
    """Each finished run under paths, loaded once, by name (in the order given), ready for concurrent use."""
    runs = {}
    for name, folder in zip(names(folders := run_folders(paths)), folders):
        run = load(folder, device=device)
        run.results = results_of(run, folder)
        warm_up(run)
        runs[name] = run
    return runs


def results_of(run: Run, folder: Path) -> dict:
    """The run's results.json (its exact dev and test NLL), or those NLLs evaluated now when it has none."""
    if (folder / RESULTS).is_file():
        return read_results(folder)
    return run.evaluate(("dev", "test"))


def warm_up(run: Run) -> None:
    """One draw and one score, so the lazily built tables (n-gram rows, item sets) exist before requests share them."""
    with warnings.catch_warnings():  # at start-up, one thread: a shortfall here says nothing to anyone
        warnings.simplefilter("ignore")
        run.sample(1, seed=0)
    run.score(run.data.train.items[:1])


def nll(results: dict, split: str) -> float | None:
    """A split's NLL from results, None when missing or not finite."""
    value = (results.get(split) or {}).get("nll")
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None
