"""One command for a machine with a CUDA GPU (`make gpu-check`): every registered model trained a few hundred
steps on the GPU (in its --dtype), resumed there, evaluated and sampled on the GPU, then its checkpoint loaded,
evaluated and sampled on the CPU; one table, exit code 1 if any model failed.

The development machines have no GPU, so there this stops at once with one line (exit code 2).
`--device cpu` runs the same checks on the CPU, to test this script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.api import load
from makemore.cli import main as makemore
from makemore.models import MODELS

from .common import NAMES, table

TOLERANCE = 1e-3  # nats: the same weights evaluated on the GPU and on the CPU agree to float32 rounding


class Failed(Exception):
    """One step of a model's check failed; the message is its row's status."""


def cli(args: list[str]) -> str:
    """makemore's own command line in this process; its stdout, or Failed with its error line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = makemore(args)
    if code != 0:
        lines = err.getvalue().strip().splitlines() or [f"exit code {code}"]
        raise Failed(f"`makemore {' '.join(args[:2])}` failed: {lines[-1]}")
    return out.getvalue()


def check_model(name: str, data: str | None, steps: int, dtype: str, device: str, root: Path) -> dict:
    """Train half the steps, resume to all of them, evaluate and sample on the device and on the CPU."""
    work = root / name
    row = {"model": name}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    half = max(1, steps // 2)
    flags = ["--no-progress", "--max-steps"]
    out = cli([*(["-i", data] if data else []), "-o", str(work), "--type", name, "--device", device, "--dtype", dtype,
               "--eval-interval", str(max(1, half // 2)), "--set", "train.warmup_steps=0", *flags, str(half)])
    row["precision"] = "bfloat16" if "bfloat16 autocast" in out else "float32"
    out = cli(["--resume", "-o", str(work), *flags, str(steps)])
    results = json.loads((work / "results.json").read_text(encoding="utf-8"))
    trainable = MODELS[name].trainable
    row.update(params=results["params"], steps=results["final_step"], train_s=results["train_seconds"],
               wall_s=results["wall_seconds"])
    if trainable and (results["final_step"] != steps or "resuming" not in out):
        raise Failed(f"resumed to step {results['final_step']}, not {steps}")
    run, cpu_run = load(work, device=device), load(work, device="cpu")
    on_device, on_cpu = run.evaluate(), cpu_run.evaluate()
    row.update(dev_nll=on_device["dev"]["nll"], cpu_dev_nll=on_cpu["dev"]["nll"])
    row["difference"] = abs(row["dev_nll"] - row["cpu_dev_nll"])
    if not all(math.isfinite(row[k]) for k in ("dev_nll", "cpu_dev_nll")) or row["difference"] > TOLERANCE:
        raise Failed(f"dev NLL {row['dev_nll']:.5f} on {device} but {row['cpu_dev_nll']:.5f} on the CPU")
    t0 = time.perf_counter()
    words = run.sample(1000)
    row["samples_per_s"] = len(words) / (time.perf_counter() - t0)
    if len(words) != 1000 or len(cpu_run.sample(10)) != 10:
        raise Failed("sampling returned too few words")
    if device == "cuda":
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def run(steps: int = 300, models: list[str] | None = None, input: str | None = None, dtype: str = "auto",
        device: str = "cuda") -> tuple[list[dict], str]:
    """Every (or the chosen) model's check; the rows and their table."""
    data = input or (str(NAMES) if NAMES.exists() else None)  # the standard names, else the bundled ones
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in models or list(MODELS):
            try:
                row = check_model(name, data, steps, dtype, device, Path(root))
                row["status"] = "ok"
            except Failed as e:
                row = {"model": name, "status": f"FAILED: {e}"}
            except Exception as e:  # noqa: BLE001 - a crash is this check's finding: report it, go on
                row = {"model": name, "status": f"FAILED: {e.__class__.__name__}: {str(e).splitlines()[0][:200]}"}
            rows.append(row)
            print(f"{name}: {row['status']}", file=sys.stderr, flush=True)

    def cell(row: dict, key: str, spec: str) -> str:
        return "—" if row.get(key) is None else format(row[key], spec)

    head = ["model", "params", "steps", "precision", f"dev NLL ({device})", "dev NLL (cpu)", "|difference|",
            "train s", "wall s", "samples/s", "peak MiB", "status"]
    cells = [[r["model"], cell(r, "params", ","), cell(r, "steps", "d"), r.get("precision", "—"),
              cell(r, "dev_nll", ".4f"), cell(r, "cpu_dev_nll", ".4f"), cell(r, "difference", ".1e"),
              cell(r, "train_s", ".1f"), cell(r, "wall_s", ".1f"), cell(r, "samples_per_s", ",.0f"),
              cell(r, "peak_mib", ",.0f"), r["status"]] for r in rows]
    return rows, table(head, cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps of each model, half before the resume")
    p.add_argument("--models", nargs="*", help=f"only these models (default: all: {', '.join(MODELS)})")
    p.add_argument("--input", help="data file (default: ../shared/data/names.txt, else the bundled names)")
    p.add_argument("--dtype", default="auto", help="training precision: auto, float32 or bfloat16")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu only to test this script")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a machine with one",
              file=sys.stderr)
        return 2
    unknown = sorted(set(args.models or []) - set(MODELS))
    if unknown:
        print(f"gpu-check: unknown models {', '.join(unknown)} (registered: {', '.join(MODELS)})", file=sys.stderr)
        return 2
    if args.device == "cuda":
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"bfloat16 {'supported' if torch.cuda.is_bf16_supported() else 'not supported'}", flush=True)
    rows, text = run(args.steps, args.models, args.input, args.dtype, args.device)
    print(text)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
