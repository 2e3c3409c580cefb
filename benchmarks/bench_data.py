"""Data path at scale: load + split + encode time and peak memory for 10K, 100K and 1M-line files, and the
fitting time of every count model (the n-gram at order 6) on the same files. Cost should grow linearly.

The files are names.txt perturbed (a letter changed, added, dropped or swapped, or two names spliced),
written to a temporary folder. Each size is measured in a fresh child process; peak memory is the rise of
the peak resident set (VmHWM, reset before each phase) over the resident set at the phase's start.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.data import load_dataset, read_items
from makemore.models import MODELS
from makemore.train import train

from .common import NAMES, REPO, fmt, model_fields, shipped_config, table, write_result

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 4_000)
NGRAM_ORDER = 6


def perturb(name: str, other: str, rng: random.Random) -> str:
    """A new name-like line: one edit of name, or name spliced with another."""
    i = rng.randrange(len(name) + 1)
    op = rng.randrange(5)
    letter = rng.choice(string.ascii_lowercase)
    if op == 0 and i < len(name):
        return name[:i] + letter + name[i + 1:]  # substitute
    if op == 1:
        return name[:i] + letter + name[i:]  # insert
    if op == 2 and len(name) > 2 and i < len(name):
        return name[:i] + name[i + 1:]  # delete
    if op == 3 and i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]  # swap neighbours
    return name[: max(1, len(name) // 2)] + other[len(other) // 2:]  # splice


def make_corpus(path: Path, lines: int, source: Path = NAMES, seed: int = 0) -> Path:
    """Write `lines` perturbed names to path (the first pass keeps the real names as they are)."""
    names = read_items(source)
    rng = random.Random(seed)
    out = names[:lines]
    while len(out) < lines:
        out += [perturb(n, rng.choice(names), rng) for n in names[: lines - len(out)]]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


class PeakMemory:
    """Peak resident-set rise, in MiB, from start() on: VmHWM is reset so earlier peaks (imports) do not count."""

    def start(self) -> PeakMemory:
        try:  # Linux: writing 5 to clear_refs resets the peak resident set to the current one
            Path("/proc/self/clear_refs").write_text("5")
            self.resettable = True
        except OSError:  # elsewhere only the lifetime peak exists: the figure is then an upper bound
            self.resettable = False
        self.base = self._status("VmRSS")
        return self

    def rise_mb(self) -> float:
        peak = self._status("VmHWM") if self.resettable else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return max(0.0, peak - (self.base or 0.0))

    @staticmethod
    def _status(field: str) -> float | None:
        """A memory figure of /proc/self/status in MiB, or None off Linux."""
        try:
            m = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
        except OSError:
            return None
        return int(m.group(1)) / 1024 if m else None


def count_overrides(model_type: str) -> dict:
    """Config overrides that make a count model an n-gram of NGRAM_ORDER, where it has an order."""
    fields = model_fields(model_type)
    if "n" in fields:
        return {"model.n": NGRAM_ORDER}
    if "order" in fields:
        return {"model.order": NGRAM_ORDER}
    return {}


def child(path: str) -> dict:
    """Measure one file in this (fresh) process: load, then fit each count model through the real loop."""
    mem = PeakMemory().start()
    t0 = time.perf_counter()
    data = load_dataset(path, warn=lambda message: None)
    load_s = time.perf_counter() - t0
    load_peak = mem.rise_mb()
    t0 = time.perf_counter()
    data.train.windows(16)  # what a window model with makemore.py's block size builds before its first step
    windows_s = time.perf_counter() - t0
    fits = []
    for name, cls in MODELS.items():
        if cls.trainable:
            continue
        cfg = shipped_config(name, count_overrides(name))
        model = cls(cfg.model, data.vocab.size)
        mem = PeakMemory().start()
        with tempfile.TemporaryDirectory() as work_dir:
            t0 = time.perf_counter()
            res = train(model, data, cfg, Path(work_dir), progress=False, write=lambda message: None)
            total = time.perf_counter() - t0
        fits.append({"model": name, "order": model.block_size + 1 if name != "bigram" else 2,
                     "fit_seconds": res.seconds, "fit_eval_save_seconds": total, "dev_nll": res.best_dev_loss,
                     "peak_rss_mb": mem.rise_mb()})
    return {"lines": len(data.train) + len(data.dev) + len(data.test), "load_seconds": load_s,
            "load_peak_rss_mb": load_peak, "windows16_seconds": windows_s, "train_windows": len(data.train.windows(16)),
            "fits": fits}


def measure(path: Path) -> dict:
    """Run child(path) in a fresh interpreter and return what it measured."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_data", "--child", str(path)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def render(rows: list[dict]) -> str:
    """Load and fit costs by file size, with the cost per 1,000 lines to show (non-)linearity."""
    load = table(["lines", "load+split+encode s", "µs/line", "peak RSS rise MiB", "windows(16) s"],
                 [[f"{r['lines']:,}", fmt(r["load_seconds"], 3), fmt(1e6 * r["load_seconds"] / r["lines"], 2),
                   fmt(r["load_peak_rss_mb"], 0), fmt(r["windows16_seconds"], 3)] for r in rows])
    fit_rows = [[f"{r['lines']:,}", f["model"], f["order"], fmt(f["fit_seconds"], 3),
                 fmt(1e6 * f["fit_seconds"] / r["lines"], 2), fmt(f["fit_eval_save_seconds"], 2),
                 fmt(f["peak_rss_mb"], 0)] for r in rows for f in r["fits"]]
    fit = table(["lines", "count model", "order", "fit s", "µs/line", "fit + dev eval + 2 checkpoints s",
                 "peak RSS rise MiB"], fit_rows)
    return load + "\n\n" + fit


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        sizes: tuple[int, ...] | None = None, **_) -> dict:
    """Make each file from the corpus, then measure it in a child process."""
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for lines in sizes:
            t0 = time.perf_counter()
            path = make_corpus(Path(tmp) / f"names_{lines}.txt", lines, Path(input or NAMES))
            make_s = time.perf_counter() - t0
            rows.append({**measure(path), "make_seconds": make_s, "file_mb": path.stat().st_size / 2**20})
    result = {"sizes": list(sizes), "quick": quick, "ngram_order": NGRAM_ORDER, "threads": torch.get_num_threads(),
              "rows": rows, "table": render(rows)}
    write_result("data", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure one file in this process
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
    else:
        print(run(args.quick)["table"])


if __name__ == "__main__":
    main()
