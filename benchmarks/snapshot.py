"""Exact losses and samples of every shipped config after a short run, to check a change leaves them bit-identical.

    python -m benchmarks.snapshot --steps 30 --out /tmp/after.json
    python -m benchmarks.snapshot --compare benchmarks/results/snapshot.json /tmp/after.json

Each config trains for --steps steps (evaluating once, at the end) on names.txt beside the checkout
(the bundled list where it is missing), then reports its exact train/dev/test NLL and ten samples.
Float results depend on the CPU's kernels: compare two snapshots made on the same machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMES = (REPO / ".." / "shared" / "data" / "names.txt").resolve()


def snapshot(steps: int, configs: list[Path]) -> dict:
    import makemore

    out = {}
    for path in configs:
        with tempfile.TemporaryDirectory() as tmp:
            run = makemore.train(path, input=str(NAMES if NAMES.exists() else REPO / "data" / "names.txt"),
                                 max_steps=steps, eval_interval=steps, work_dir=tmp, progress=False,
                                 threads=1)
        r = run.results
        out[path.stem] = {"train": r["train"]["nll"], "dev": r["dev"]["nll"], "test": r["test"]["nll"],
                          "samples": [w for w, _ in r["samples"]]}
    return out


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--only", nargs="*", help="config names (default: every configs/*.yaml)")
    p.add_argument("--out", type=Path)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    a = p.parse_args()
    if a.compare:
        before, after = (json.loads(f.read_text()) for f in a.compare)
        diff = 0
        for name, b in before["runs"].items():
            a_ = after["runs"].get(name, {})
            losses = all(b[k] == a_.get(k) for k in ("train", "dev", "test"))
            samples = b["samples"] == a_.get("samples")
            diff += not losses
            print(f"{name:16s} losses {'identical' if losses else 'DIFFERENT'}, "
                  f"samples {'identical' if samples else 'different'}")
        print(f"{before['commit']} vs {after['commit']}: losses of {len(before['runs']) - diff} of "
              f"{len(before['runs'])} configs bit-identical")
        return 1 if diff else 0
    configs = sorted(p for p in (REPO / "configs").glob("*.yaml") if not a.only or p.stem in a.only)
    result = {"commit": commit(), "steps": a.steps, "machine": platform.processor() or platform.machine(),
              "runs": snapshot(a.steps, configs)}
    text = json.dumps(result, indent=1)
    if a.out:
        a.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
