"""Hand-written backward (model.backward: manual) against autograd: time of a training step, mlp and bnmlp.

Both variants share the shipped config, the initial weights and every batch; their steps alternate, each
going first every other time, so that a change in the machine's load hits both alike, and the median over
the measured steps is reported: forward + backward, and the whole step with AdamW.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from makemore.models import create_model
from makemore.train import Batches, make_optimizer

from .common import cpu_busy, fmt, load_names, median, shipped_config, table, torch_threads, write_result

MODELS = ("mlp", "bnmlp")  # the models with a hand-written backward
VARIANTS = ("autograd", "manual")


def measure(model_type: str, data, warmup: int, steps: int, threads: int | None) -> dict:
    """Median milliseconds of forward + backward and of the whole step, for both variants, alternating."""
    cfg = shipped_config(model_type)
    models, optimizers = {}, {}
    for backward in VARIANTS:
        torch.manual_seed(cfg.seed)  # the same initial weights
        models[backward] = create_model(model_type, replace(cfg.model, backward=backward), data.vocab.size,
                                        data.max_item_length).train()
        optimizers[backward] = make_optimizer(models[backward], cfg.train)
    batches = Batches(data.train, models["autograd"], cfg.train.batch_size, cfg.seed)
    times = {v: {"fwd_bwd": [], "step": []} for v in VARIANTS}
    loss_diff = 0.0
    with torch_threads(cfg.train.threads if threads is None else threads) as used:
        for i in range(warmup + steps):
            x, y = batches.next()
            losses = {}
            for backward in VARIANTS if i % 2 else VARIANTS[::-1]:  # each goes first every other step
                model, optimizer = models[backward], optimizers[backward]
                t0 = time.perf_counter()
                _, loss = model(x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                t1 = time.perf_counter()
                optimizer.step()
                t2 = time.perf_counter()
                losses[backward] = loss.item()
                if i >= warmup:
                    times[backward]["fwd_bwd"].append(t1 - t0)
                    times[backward]["step"].append(t2 - t0)
            loss_diff = max(loss_diff, abs(losses["manual"] - losses["autograd"]))
    row = {"model": model_type, "batch_size": cfg.train.batch_size, "params": models["manual"].num_params(),
           "threads": used, "steps_timed": steps, "max_loss_difference": loss_diff}
    for backward in VARIANTS:
        for part in ("fwd_bwd", "step"):
            row[f"{backward}_{part}_ms"] = 1e3 * median(times[backward][part])
    for part in ("fwd_bwd", "step"):
        row[f"manual_over_autograd_{part}"] = row[f"manual_{part}_ms"] / row[f"autograd_{part}_ms"]
    return row


def render(rows: list[dict]) -> str:
    """Both variants side by side as one Markdown table."""

    def cells(r: dict, part: str) -> list[str]:
        ratio = r[f"manual_over_autograd_{part}"]
        return [fmt(r[f"autograd_{part}_ms"], 2), fmt(r[f"manual_{part}_ms"], 2), f"{ratio:.2f}"]

    out = [[r["model"], f"{r['params']:,}", r["batch_size"], r["threads"], r["steps_timed"],
            *cells(r, "fwd_bwd"), *cells(r, "step")] for r in rows]
    head = ["model", "params", "batch", "threads", "steps", "autograd fwd+bwd ms", "manual fwd+bwd ms",
            "manual / autograd", "autograd step ms", "manual step ms", "manual / autograd"]
    return table(head, out)


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        models: list[str] | None = None, threads: int | None = None, steps: int | None = None, **_) -> dict:
    """mlp and bnmlp (or those named) at their shipped configs; threads: the config's unless given."""
    data = load_names(input)
    warmup, steps = (2, 5) if quick else (20, steps or 300)
    busy = cpu_busy()
    rows = [measure(name, data, warmup, steps, threads) for name in (models or MODELS)]
    result = {"input": str(input or "names.txt"), "quick": quick, "cpu_busy_before": busy, "rows": rows}
    result["table"] = render(rows)
    write_result("backward", result, results_dir)
    return result


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps")
    p.add_argument("--models", nargs="*", help="only these models (default: mlp bnmlp)")
    p.add_argument("--threads", type=int, help="torch threads (default: the config's)")
    p.add_argument("--steps", type=int, help="measured steps of each variant (default 300)")
    args = p.parse_args()
    print(run(args.quick, models=args.models, threads=args.threads, steps=args.steps)["table"])


if __name__ == "__main__":
    main()
