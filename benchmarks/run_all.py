"""Run every benchmark (`make bench`): print each table, write results/<name>.json and results/report.md."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from . import bench_data, bench_matmul, bench_profile, bench_quality, bench_sample, bench_speedrun, bench_train
from .common import RESULTS, cpu_busy, machine, write_result

# the order matters: the matmul peak feeds train's MFU, and train's timings pick the profiled model
BENCHMARKS = {
    "matmul": ("The machine's limit: fp32 matmul", bench_matmul),
    "train": ("Training throughput and MFU", bench_train),
    "speedrun": ("Speedruns: time to dev NLL ≤ 2.00 and ≤ 1.95 (configs/speedrun*.yaml)", bench_speedrun),
    "sample": ("Sampling", bench_sample),
    "data": ("Data: load, encode and n-gram fitting at scale", bench_data),
    "profile": ("Profile of one training step of the slowest model", bench_profile),
    "quality": ("Model quality: every shipped config on names.txt", bench_quality),
}
BUSY = 0.1  # share of the cores other processes may use before a warning: two threads stall behind a third


def run_one(name: str, quick: bool, results_dir: Path, input: str | Path | None, peak: float | None) -> dict:
    """One benchmark, with its run time and how busy the machine was just before it, saved in its JSON."""
    title, module = BENCHMARKS[name]
    print(f"\n## {title}\n", flush=True)
    busy = cpu_busy()
    if busy is not None and busy > BUSY:
        print(f"warning: other work keeps the machine {100 * busy:.0f}% busy; with two threads on two cores "
              f"these figures will be far slower than on a quiet machine", flush=True)
    kwargs = {"peak_gflops": peak} if name == "train" and peak else {}
    t0 = time.perf_counter()
    result = module.run(quick=quick, results_dir=results_dir, input=input, **kwargs)
    result.update(seconds=time.perf_counter() - t0, cpu_busy_before=busy)
    write_result(name, result, results_dir)
    print(result["table"], f"\n\n({name}: {result['seconds']:.0f}s)", flush=True)
    return result


def report(results_dir: Path) -> str:
    """Every result in results_dir as one Markdown document, in benchmark order."""
    m = machine()
    parts = [f"# makemore benchmarks\n\n{m['date']}, {m['cpu']}, {m['cores']} cores ({m['arch']}), "
             f"torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}\n"]
    for name, (title, _) in BENCHMARKS.items():
        path = results_dir / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text(encoding="utf-8"))
        busy = r.get("cpu_busy_before")
        note = f"; other work kept the machine {100 * busy:.0f}% busy just before" if busy and busy > BUSY else ""
        quick = " (quick smoke run)" if r.get("quick") else ""
        parts.append(f"## {title}{quick}\n\n{r['table']}\n\n_{r['machine']['date']}, "
                     f"{r.get('seconds', 0):.1f} s{note}_\n")
    return "\n".join(parts)


def run_all(quick: bool = False, results_dir: Path | None = None, only: list[str] | None = None,
            input: str | Path | None = None) -> dict:
    """Run the chosen benchmarks in order; returns {name: result} and rewrites results/report.md."""
    results_dir = Path(results_dir or RESULTS)
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name in only or BENCHMARKS:
        peak = out["matmul"]["peak_gflops"] if "matmul" in out else None
        out[name] = run_one(name, quick, results_dir, input, peak)
    (results_dir / "report.md").write_text(report(results_dir), encoding="utf-8")
    print(f"\nall benchmarks: {time.perf_counter() - t0:.0f}s; results in {results_dir}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps, small files, seconds not minutes")
    p.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these benchmarks")
    p.add_argument("--results-dir", type=Path, help=f"where the JSON goes (default {RESULTS})")
    p.add_argument("--input", help="corpus (default ../shared/data/names.txt)")
    args = p.parse_args()
    run_all(args.quick, args.results_dir, args.only, args.input)


if __name__ == "__main__":
    main()
