"""The most likely words and constrained generation on a trained run: times, nodes expanded, draws.

    python -m benchmarks.bench_search --run out/lstm
"""

import argparse
import time
import warnings
from statistics import mean

from makemore.api import load

CONSTRAINTS = {  # three rare constraints
    "--match '[a-z]*ynn' --contains z": dict(match="[a-z]*ynn", contains="z"),
    "--prefix ka --min-length 9 --max-length 9": dict(prefix="ka", min_length=9, max_length=9),
    "--suffix ux": dict(suffix="ux"),
}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--tries", type=int, default=1_000_000)
    args = p.parse_args()
    run = load(args.run)
    for options in ({}, {"prefix": "ka", "novel": True}):
        samples, seconds = timed(lambda o=options: run.sample(20, most_likely=True, **o))
        print(f"most likely {options or ''}: {seconds:.3f} s, {samples.stats.expanded:,} prefixes expanded")
        print("  " + ", ".join(f"{w} {p:.2e}" for w, p in zip(samples, samples.probs)))
    for name, options in CONSTRAINTS.items():
        for route in ("reject", "mask"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples, seconds = timed(lambda o=options, r=route: run.sample(100, constrain=r, tries=args.tries, **o))
            s = samples.stats
            print(f"{name} [{route}]: kept {s.kept} of {s.drawn:,} drawn in {seconds:.3f} s; mean length "
                  f"{mean(map(len, samples)):.1f}; first: {' '.join(samples[:6])}")


if __name__ == "__main__":
    main()
