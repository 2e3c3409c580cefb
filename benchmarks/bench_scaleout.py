"""Scale-out figures, one command each (minutes, so not part of `make bench`):

    python -m benchmarks.bench_scaleout sweep   # a sweep of 4 small MLP runs with --jobs 1 and --jobs 2
    python -m benchmarks.bench_scaleout lines   # a 10-million-line file: load/split/encode, train, exact eval
    python -m benchmarks.bench_scaleout ddp     # DDP throughput under torchrun, 1 and 2 processes on the CPU
    python -m benchmarks.bench_scaleout gpu     # on a CUDA machine: the Transformer's tokens/s and MFU on one GPU

Each prints a Markdown table and writes benchmarks/results/scaleout_<part>.json (ddp:
scaleout_ddp_<model>.json). The 10M-line file is names.txt perturbed (bench_data.make_corpus, seeded: the
same file every time), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .bench_data import PeakMemory, make_corpus
from .common import NAMES, REPO, cpu_busy, fmt, table, write_result

ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
TINY_MLP = ["--type", "mlp", "--block-size", "3", "--n-embd", "10", "--n-embd2", "64"]


def makemore(args: list[str], threads: int | None = None, prefix: list[str] | None = None) -> tuple[float, str]:
    """Run makemore (under prefix, e.g. torchrun) to its end: wall seconds and stdout; fails loudly."""
    env = {**ENV, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    cmd = [*(prefix or [sys.executable, "-m"]), "makemore", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc.stdout


def sweep(steps: int = 1500, input: Path = NAMES) -> dict:
    """configs/sweeps/mlp-grid.yaml (4 runs) at --jobs 1 and --jobs 2: wall time and each run's dev NLL."""
    rows, dev = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, 2):
            root = Path(tmp) / f"jobs{jobs}"
            busy = cpu_busy()
            wall, _ = makemore(["sweep", "configs/sweeps/mlp-grid.yaml", "--input", str(input), "--work-dir",
                                str(root), "--jobs", str(jobs), "--no-progress", "--max-steps", str(steps)])
            runs = {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/results.json")}
            dev[jobs] = {name: r["dev"]["nll"] for name, r in sorted(runs.items())}
            rows.append({"jobs": jobs, "wall_seconds": wall, "runs": len(runs), "cpu_busy_before": busy,
                         "dev_nll": dev[jobs]})
    diff = max(abs(dev[1][k] - dev[2][k]) for k in dev[1])
    text = table(["--jobs", "runs", "threads a run", "wall s", "speed-up", "other load before"],
                 [[r["jobs"], r["runs"], max(1, (os.cpu_count() or 1) // r["jobs"]), fmt(r["wall_seconds"]),
                   f"{rows[0]['wall_seconds'] / r['wall_seconds']:.2f}x", f"{100 * (r['cpu_busy_before'] or 0):.0f}%"]
                  for r in rows])
    text += (f"\n\nSame results: the 4 runs' dev NLL differ by at most {diff:.1e} between --jobs 1 and --jobs 2 "
             f"(a different thread count may change the float summation order).")
    return {"steps": steps, "rows": rows, "max_dev_nll_difference": diff, "table": text}


def child_lines(path: str, steps: int, work_dir: str) -> dict:
    """In a fresh process: load/split/encode with its peak memory, then train and evaluate exactly through the CLI."""
    mem = PeakMemory().start()
    t0 = time.perf_counter()
    from makemore.data import load_dataset

    data = load_dataset(path, warn=lambda message: None)
    load_s, load_peak = time.perf_counter() - t0, mem.rise_mb()
    sizes = {name: {"x": s.x.element_size() * s.x.nelement(), "dtype": str(s.x.dtype)}
             for name, s in data.splits.items()}
    items = len(data.train) + len(data.dev) + len(data.test)
    del data
    from makemore.cli import main

    t0 = time.perf_counter()
    code = main(["-i", path, "-o", work_dir, "--overwrite", "--no-progress", *TINY_MLP, "--max-steps", str(steps),
                 "--eval-interval", str(steps), "--batch-size", "512", "--set", "train.eval_samples=0"])
    train_wall = time.perf_counter() - t0
    results = json.loads((Path(work_dir) / "results.json").read_text())
    return {"items": items, "load_seconds": load_s, "load_peak_rise_mb": load_peak, "encoded": sizes,
            "run_exit": code, "run_wall_seconds": train_wall, "results": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def lines(n: int = 10_000_000, steps: int = 300, input: Path = NAMES) -> dict:
    """Make an n-line file, then measure it in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"names_{n}.txt"
        t0 = time.perf_counter()
        make_corpus(path, n, input)
        make_s, size = time.perf_counter() - t0, path.stat().st_size
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_scaleout", "child-lines", str(path),
                               "--steps", str(steps), "--work-dir", str(Path(tmp) / "run")],
                              cwd=REPO, env={**ENV, "OMP_NUM_THREADS": "2"}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    res = r["results"]
    text = table(["lines", "file MiB", "make s", "load+split+encode s", "peak RSS rise MiB", "x dtype",
                  "train steps", "train s", "whole run s", "train nll", "dev nll", "test nll", "process peak RSS MiB"],
                 [[f"{r['items']:,}", fmt(size / 2**20), fmt(make_s), fmt(r["load_seconds"]),
                   fmt(r["load_peak_rise_mb"], 0), r["encoded"]["train"]["dtype"], steps, fmt(res["train_seconds"]),
                   fmt(r["run_wall_seconds"]), f"{res['train']['nll']:.4f}", f"{res['dev']['nll']:.4f}",
                   f"{res['test']['nll']:.4f}", fmt(r["peak_rss_mb"], 0)]])
    text += ("\n\nThe NLLs are exact means over every character of each whole split (evaluation is never "
             "sampled); the run is a tiny MLP trained only a few hundred steps, so they show that it trains and "
             "evaluates at this size, not how good a model of it can be.")
    return {"lines": n, "steps": steps, "make_seconds": make_s, "file_bytes": size, **r, "table": text}


def ddp(steps: int = 300, input: Path = NAMES, model: str = "mlp") -> dict:
    """The same run under torchrun with 1 and 2 processes (1 thread each, gloo): steps/s and examples/s."""
    rows = []
    configs = {"mlp": ["--config", "configs/mlp.yaml"], "transformer": ["--config", "configs/transformer.yaml"]}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            work = Path(tmp) / f"p{n}"
            busy = cpu_busy()
            prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m"]
            wall, _ = makemore([*configs[model], "-i", str(input), "-o", str(work), "--no-progress", "--threads", "1",
                                "--max-steps", str(steps), "--eval-interval", str(steps),
                                "--set", "train.eval_samples=0"], threads=1, prefix=prefix)
            res = json.loads((work / "results.json").read_text())
            batch = yaml.safe_load((work / "config.yaml").read_text())["train"]["batch_size"]
            rows.append({"processes": n, "train_seconds": res["train_seconds"], "wall_seconds": wall,
                         "steps_per_s": steps / res["train_seconds"], "examples_per_s": steps * batch /
                         res["train_seconds"], "batch": batch, "dev_nll": res["dev"]["nll"], "cpu_busy_before": busy})
    text = table(["processes", "global batch", "steps", "train s (incl. 1 dev eval)", "steps/s", "examples/s",
                  "speed-up", "dev nll", "other load before"],
                 [[r["processes"], r["batch"], steps, fmt(r["train_seconds"]), fmt(r["steps_per_s"]),
                   fmt(r["examples_per_s"], 0), f"{r['steps_per_s'] / rows[0]['steps_per_s']:.2f}x",
                   f"{r['dev_nll']:.4f}", f"{100 * (r['cpu_busy_before'] or 0):.0f}%"] for r in rows])
    return {"model": model, "steps": steps, "rows": rows, "table": text}


def gpu(input: Path = NAMES, model: str = "transformer") -> dict:
    """Tokens/s and MFU of the shipped Transformer config on one CUDA GPU, in its --dtype (bfloat16 autocast).

    MFU against the GPU's measured peak: the best of large bfloat16 matmuls timed here, FLOPs of a step
    from torch's flop counter. Stops with one line (exit 1) on a machine without a CUDA GPU.
    """
    import torch

    from .bench_train import step_flops, time_steps
    from .common import load_names, median, shipped_config, target_chars_per_step

    if not torch.cuda.is_available():
        raise SystemExit("bench_scaleout gpu: this machine has no CUDA GPU; nothing was measured")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.mm(a, a)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            torch.mm(a, a)
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / 10)
    peak = 2 * 8192**3 / best / 1e12
    data = load_names(input).to("cuda")
    cfg = shipped_config(model, {"train.device": "cuda"})
    torch.manual_seed(cfg.seed)
    from makemore.models import create_model

    net = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length).to("cuda")
    flops = step_flops(net, data, cfg)
    sec = median(time_steps(net, data, cfg, warmup=20, steps=300, seconds=10.0))
    tokens = target_chars_per_step(model, cfg.train.batch_size, data) / sec
    mfu = flops / sec / 1e12 / peak
    text = table(["GPU", "model", "batch", "ms/step", "tokens/s", "TFLOP/s", "measured bf16 peak TFLOP/s", "MFU"],
                 [[torch.cuda.get_device_name(), model, cfg.train.batch_size, fmt(1e3 * sec, 2), fmt(tokens, 0),
                   fmt(flops / sec / 1e12, 2), fmt(peak, 0), f"{100 * mfu:.2f}%"]])
    return {"gpu": torch.cuda.get_device_name(), "model": model, "ms_per_step": 1e3 * sec, "tokens_per_s": tokens,
            "flops_per_step": flops, "peak_tflops": peak, "mfu": mfu, "table": text}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["sweep", "lines", "ddp", "gpu", "child-lines"])
    p.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--lines", type=int, default=10_000_000, help="lines of the generated file (lines)")
    p.add_argument("--steps", type=int, help="training steps of each run (sweep 1500, lines 300, ddp 300)")
    p.add_argument("--model", default="mlp", choices=["mlp", "transformer"], help="model of the ddp part")
    p.add_argument("--input", type=Path, default=NAMES, help="corpus (default ../shared/data/names.txt)")
    p.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.part == "child-lines":
        print(json.dumps(child_lines(args.path, args.steps, args.work_dir)))
        return
    if args.part == "sweep":
        result = sweep(args.steps or 1500, args.input)
    elif args.part == "lines":
        result = lines(args.lines, args.steps or 300, args.input)
    elif args.part == "ddp":
        result = ddp(args.steps or 300, args.input, args.model)
    else:
        result = gpu(args.input)
    write_result(f"scaleout_{args.part}" + (f"_{args.model}" if args.part == "ddp" else ""), result)
    print(result["table"])


if __name__ == "__main__":
    main()
