"""Run every benchmark (`make bench`): print each table, write results/<name>.json and results/report.md."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import bench_data, bench_matmul, bench_profile, bench_sample, bench_speedrun, bench_train
from .common import RESULTS, machine

# the order matters: the matmul peak feeds train's MFU, and train's timings pick the profiled model
BENCHMARKS = {
    "matmul": ("The machine's limit: fp32 matmul", bench_matmul),
    "train": ("Training throughput and MFU", bench_train),
    "speedrun": ("Time to dev NLL ≤ 2.00 (configs/speedrun.yaml)", bench_speedrun),
    "sample": ("Sampling", bench_sample),
    "data": ("Data: load, encode and n-gram fitting at scale", bench_data),
    "profile": ("Profile of one training step of the slowest model", bench_profile),
}


def run_all(quick: bool = False, results_dir: Path | None = None, only: list[str] | None = None,
            input: str | Path | None = None) -> dict:
    """Run the chosen benchmarks in order; returns {name: result}."""
    results_dir = Path(results_dir or RESULTS)
    m = machine()
    header = (f"# makemore benchmarks{' (quick smoke run)' if quick else ''}\n\n"
              f"{m['date']}, {m['cpu']}, {m['cores']} cores ({m['arch']}), torch {m['torch']} "
              f"with {m['torch_threads']} threads, Python {m['python']}\n")
    sections, out = [header], {}
    t_all = time.perf_counter()
    for name in only or BENCHMARKS:
        title, module = BENCHMARKS[name]
        print(f"\n## {title}\n", flush=True)
        t0 = time.perf_counter()
        kwargs = {"peak_gflops": out["matmul"]["peak_gflops"]} if name == "train" and "matmul" in out else {}
        out[name] = module.run(quick=quick, results_dir=results_dir, input=input, **kwargs)
        seconds = time.perf_counter() - t0
        print(out[name]["table"], f"\n\n({name}: {seconds:.0f}s)", flush=True)
        sections.append(f"## {title}\n\n{out[name]['table']}\n\n_{seconds:.0f} s_\n")
    total = time.perf_counter() - t_all
    sections.append(f"_All benchmarks: {total:.0f} s._\n")
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "report.md").write_text("\n".join(sections), encoding="utf-8")
    print(f"\nall benchmarks: {total:.0f}s; results in {results_dir}", flush=True)
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
