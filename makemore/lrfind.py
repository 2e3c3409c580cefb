"""The learning-rate finder: raise the rate exponentially between two bounds, one training step at
each, record the loss, and suggest a rate below the point where the loss turns unstable.

Two smoothings of the noisy minibatch loss, for two jobs. While running, an exponential moving
average (bias-corrected) stops the sweep once it exceeds stop_factor times its minimum: it can only
look back. Afterwards the curve is smoothed by a centered moving average, which has no lag; an
EMA's minimum trails the real one to the right, past the rate where the loss already turns up
(for a loss that falls by orders of magnitude, far past it). The suggestion is the rate at the
centered average's minimum divided by `divisor` (default 3), clamped to the bounds, so it is always
below the rate where the run diverged. Nothing is saved as a checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from . import config as C
from .device import precision
from .models import Model
from .runs import setup
from .tracking import Tracker
from .train import Batches, make_optimizer, train_step

CSV_FILE, PNG_FILE, TB_DIR = "lr_find.csv", "lr_find.png", "tb/lr_find"


@dataclass
class LRFindResult:
    """The recorded curve, the suggestion, and where the files were written."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    lr_at_min: float
    diverged_at: float | None
    files: list[Path] = field(default_factory=list)


def schedule(lr_min: float, lr_max: float, steps: int) -> list[float]:
    """steps rates growing by a constant factor from lr_min to lr_max, both included."""
    return [lr_min * (lr_max / lr_min) ** (i / max(1, steps - 1)) for i in range(steps)]


def smooth(losses: list[float], beta: float) -> list[float]:
    """Exponential moving average with bias correction, so the first values are not pulled toward 0."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def centered(losses: list[float], half: int) -> list[float]:
    """Mean over the 2 * half + 1 points around each point (fewer at the ends): smoothing without lag."""
    out = []
    for i in range(len(losses)):
        window = losses[max(0, i - half): i + half + 1]
        out.append(sum(window) / len(window))
    return out


def diverged_index(smoothed: list[float], stop_factor: float) -> int | None:
    """First index where the smoothed loss is not finite or exceeds stop_factor times its minimum so far."""
    best = math.inf
    for i, value in enumerate(smoothed):
        if not math.isfinite(value) or (i > 0 and value > stop_factor * best):
            return i
        best = min(best, value)
    return None


def suggest(lrs: list[float], smoothed: list[float], divisor: float = 3.0) -> tuple[float, float]:
    """(suggested rate, rate at the smoothed minimum); give it the curve up to where it diverged."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if not finite:
        raise C.ConfigError("the loss was not finite even at the lowest rate: lower --lr-min")
    i_min = min(finite, key=lambda i: smoothed[i])
    return min(lrs[-1], max(lrs[0], lrs[i_min] / divisor)), lrs[i_min]


def sweep_rates(model: Model, batches: Batches, optimizer: torch.optim.Optimizer, lrs: list[float],
                beta: float = 0.95, stop_factor: float = 4.0, grad_clip: float = 0.0,
                progress: bool = False, autocast=contextlib.nullcontext) -> tuple[list[float], list[float]]:
    """One training step (train.train_step) at each rate until the smoothed loss diverges; (rates used, losses)."""
    losses: list[float] = []
    model.train()
    for lr in tqdm(lrs, disable=not progress, desc="lr-find", dynamic_ncols=True):
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches.next()
        loss = train_step(model, model, optimizer, x, y, grad_clip=grad_clip, autocast=autocast)
        losses.append(loss.item())  # one sync a step: the stop test needs the value
        if diverged_index(smooth(losses, beta), stop_factor) is not None:  # O(steps^2) floats: nothing
            break
    return lrs[: len(losses)], losses


def lr_find(cfg: C.Config, lr_min: float = 1e-5, lr_max: float = 1.0, steps: int = 300, beta: float = 0.95,
            divisor: float = 3.0, stop_factor: float = 4.0, out_dir: str | Path | None = None,
            plot: bool = True, progress: bool = True, write=print) -> LRFindResult:
    """Run the finder on cfg's model and data with cfg's optimizer; write CSV, PNG and TensorBoard to out_dir."""
    if not 0 < lr_min < lr_max:
        raise C.ConfigError(f"need 0 < --lr-min < --lr-max, got {lr_min:g} and {lr_max:g}")
    if steps < 10:
        raise C.ConfigError(f"--steps must be at least 10, got {steps}")
    if not 0 <= beta < 1:
        raise C.ConfigError(f"--smoothing must be in [0, 1), got {beta:g}")
    if divisor < 1:
        raise C.ConfigError(f"--divisor must be at least 1, got {divisor:g}")
    data, model = setup(cfg, warn=write)
    if not model.trainable or not any(p.requires_grad for p in model.parameters()):
        raise C.ConfigError(f"{cfg.model_type} is fitted by counting, not by gradient descent: "
                            f"it has no learning rate to find")
    if plot:
        from .plots import require_matplotlib

        require_matplotlib()  # before the work, not after it
    write(f"lr-find: {cfg.model_type}, {model.num_params():,} parameters, {cfg.train.optimizer}, batch "
          f"{cfg.train.batch_size}, {steps} steps from {lr_min:.1e} to {lr_max:.1e}")
    rates = schedule(lr_min, lr_max, steps)
    batches = Batches(data.train, model, cfg.train.batch_size, cfg.seed)
    autocast = functools.partial(precision, model.device, cfg.train.dtype)  # as training will run
    lrs, losses = sweep_rates(model, batches, make_optimizer(model, cfg.train), rates, beta, stop_factor,
                              cfg.train.grad_clip, progress, autocast)
    stop = diverged_index(smooth(losses, beta), stop_factor)
    smoothed = centered(losses, max(1, round(0.5 / (1 - beta))))  # about as wide as the EMA's memory
    suggestion, at_min = suggest(lrs[:stop], smoothed[:stop], divisor)
    result = LRFindResult(lrs, losses, smoothed, suggestion, at_min, lrs[stop] if stop is not None else None)
    out = Path(out_dir if out_dir is not None else cfg.work_dir)
    result.files = write_outputs(result, out, plot)
    return result


def write_outputs(result: LRFindResult, out: Path, plot: bool = True) -> list[Path]:
    """The curve as CSV, as TensorBoard scalars (step = index), and as a PNG when plotting."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_FILE
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "lr", "loss", "smoothed_loss"])
        for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed)):
            writer.writerow([i, f"{lr:.6g}", f"{loss:.6f}", f"{sm:.6f}"])
    tracker = Tracker(out / TB_DIR)
    try:
        for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed)):
            tracker.scalar("lr_find/lr", lr, i)
            tracker.scalar("lr_find/loss", loss, i)
            tracker.scalar("lr_find/smoothed_loss", sm, i)
        tracker.text("lr_find/suggestion", f"suggested lr {result.suggestion:.3g} (minimum of the smoothed loss "
                     f"at {result.lr_at_min:.3g})", 0)
    finally:
        tracker.close()
    files = [csv_path, out / TB_DIR]
    if plot:
        from .plots import lr_curve

        files.append(lr_curve(result.lrs, result.losses, result.smoothed, result.suggestion, out / PNG_FILE,
                              result.diverged_at))
    return files
