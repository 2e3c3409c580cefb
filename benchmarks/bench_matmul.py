"""The machine's limit: measured fp32 matrix-multiply GFLOP/s, the denominator of every MFU figure."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .common import table, write_result

SQUARE = (256, 512, 1024, 2048)
# shapes the small models actually multiply: MLP hidden layer at makemore.py's setting, forward and weight grad
MODEL_SHAPES = ((228, 1024, 64), (1024, 228, 64), (512, 192, 512))


def gflops(m: int, k: int, n: int, seconds: float = 0.5, reps: int = 3) -> float:
    """Best GFLOP/s of (m, k) @ (k, n) in fp32, out of `reps` timed batches of back-to-back calls."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)  # warm-up: first call allocates and picks kernels
    t0 = time.perf_counter()
    calls = 1
    while time.perf_counter() - t0 < seconds / (reps * 4):
        torch.mm(a, b, out=out)
        calls += 1
    best = float("inf")
    for _ in range(reps):  # best of a few: other processes on a shared machine only ever slow it down
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - t0) / calls)
    return 2 * m * k * n / best / 1e9


def run(quick: bool = False, results_dir: Path | None = None, **_) -> dict:
    """Measure square and model-shaped matmuls; the limit is the best square figure."""
    seconds = 0.05 if quick else 0.6
    squares = SQUARE[:2] if quick else SQUARE
    rows = [{"m": n, "k": n, "n": n, "gflops": gflops(n, n, n, seconds)} for n in squares]
    rows += [{"m": m, "k": k, "n": n, "gflops": gflops(m, k, n, seconds)} for m, k, n in MODEL_SHAPES]
    peak = max(r["gflops"] for r in rows[: len(squares)])
    result = {"peak_gflops": peak, "threads": torch.get_num_threads(), "shapes": rows}
    result["table"] = table(["(m, k) @ (k, n)", "fp32 GFLOP/s"],
                            [[f"({r['m']}, {r['k']}) @ ({r['k']}, {r['n']})", f"{r['gflops']:.1f}"] for r in rows])
    threads = torch.get_num_threads()
    result["table"] += f"\n\nMachine limit (best square fp32 matmul, {threads} threads): {peak:.1f} GFLOP/s"
    write_result("matmul", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    print(run(p.parse_args().quick)["table"])


if __name__ == "__main__":
    main()
