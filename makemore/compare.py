"""Tables of finished runs: read each run folder's results.json, sort by dev NLL, print Markdown, write CSV."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

from .config import ConfigError

RESULTS = "results.json"
COLUMNS = ["run", "type", "params", "steps", "train_nll", "dev_nll", "test_nll", "wall_s"]


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders (holding results.json) among paths; a path that is not one is searched below."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigError(f"{path} does not exist: give run folders or a folder that holds them")
        if (path / RESULTS).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(r.parent for r in path.rglob(RESULTS))
    unique = list(dict.fromkeys(found))
    if not unique:
        where = ", ".join(str(p) for p in paths)
        raise ConfigError(f"no finished runs (folders with {RESULTS}) in {where}: train a run first")
    return unique


def read_results(run_dir: str | Path) -> dict:
    """A run's results.json, with a one-line error when it is missing or damaged."""
    path = Path(run_dir) / RESULTS
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e.__class__.__name__}; rerun that run or remove the folder") from None
    if not isinstance(results, dict):
        raise ConfigError(f"{path} is not a makemore results file")
    return results


def result_row(run_dir: str | Path, name: str | None = None) -> dict:
    """One table row from a run folder: type, parameters, steps, the three NLLs, wall time."""
    r = read_results(run_dir)

    def nll(split: str) -> float | None:
        return (r.get(split) or {}).get("nll")

    return {"run": name if name is not None else str(run_dir), "type": r.get("type"), "params": r.get("params"),
            "steps": r.get("steps"), "train_nll": nll("train"), "dev_nll": nll("dev"), "test_nll": nll("test"),
            "wall_s": r.get("wall_seconds")}


def by_dev_nll(row: dict) -> tuple[bool, float]:
    """Sort key: lowest dev NLL first; rows without one (unfinished, diverged) last."""
    dev = row.get("dev_nll")
    missing = dev is None or not math.isfinite(dev)
    return missing, 0.0 if missing else dev


def compare_runs(paths: list[str | Path]) -> list[dict]:
    """Rows of every finished run under paths, sorted by dev NLL."""
    return sorted((result_row(p) for p in find_runs(paths)), key=by_dev_nll)


def format_value(value, key: str = "") -> str:
    """A cell as text: NLLs to 4 decimals, seconds to 1, parameter counts with thousands separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if key.endswith("_nll"):
            return f"{value:.4f}"
        if key.endswith("_s"):
            return f"{value:.1f}"
        return f"{value:g}"
    if isinstance(value, int) and key == "params":
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """Rows (dicts of raw values) as a Markdown table: cells formatted by format_value, numbers right-aligned."""
    cells = [[format_value(row.get(c), c) for c in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) and c != "run"
               for c in columns]
    return render_table(columns, cells, numeric)


NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*[%×x]?|[-—]?")  # 1,234.5 | 38.6% | 13.6× | - | — | empty


def render_table(headers: list[str], cells: list[list[str]], numeric: list[bool] | None = None) -> str:
    """The one Markdown table renderer (compare, sweep, benchmarks): columns padded so it also reads as plain
    text, numeric columns right-aligned (by default: those whose every cell reads as a number or a dash)."""
    if numeric is None:
        numeric = [any(r[i] not in ("", "-", "—") for r in cells) and all(NUMBER.fullmatch(r[i]) for r in cells)
                   for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if num else "-" * (w + 2) for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in cells])


def write_csv(rows: list[dict], columns: list[str], path: str | Path) -> None:
    """The rows as CSV with raw (unrounded) values, for spreadsheets and scripts."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
