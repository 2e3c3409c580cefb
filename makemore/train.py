"""The one training loop for every trainable model (count models are fitted by one counting pass)."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint
from . import distributed as D
from .config import Config, ConfigError, TrainConfig
from .data import PAD, Dataset, Split
from .device import precision
from .evaluate import split_nll
from .models import Model
from .resume import StopRequest, restore_rng, rng_state
from .sample import generate_tagged
from .tracking import Tracker


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    """How a training run ended."""

    step: int
    best_dev_loss: float | None
    seconds: float  # in the loop (or counting pass), over every process of the run
    stopped: str  # "finished", "target", "interrupted", "fitted"
    wall_before: float = 0.0  # wall-clock seconds of the run's earlier processes (resumed runs)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at a step: linear warm-up, then constant, step decay or cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "step":
        return cfg.lr * (cfg.step_factor if step >= cfg.step_at * cfg.max_steps else 1.0)
    if cfg.schedule == "cosine":
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        floor = cfg.lr * cfg.min_lr_ratio
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr


def make_optimizer(model: Model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; weight decay on matrices and embeddings only, never on biases or gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    # fused: one kernel updates every parameter, instead of a loop of small kernels over them
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)


def train_step(forward, model: Model, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
               grad_clip: float = 0.0, autocast=contextlib.nullcontext, before_update=None,
               rank: int = 0, world_size: int = 1, accum: int = 1) -> torch.Tensor:
    """One optimization step: forward (in autocast()), zero_grad, backward, clip, update; the loss, on its device.

    forward is the model, its compiled form, or either under DDP; before_update(), if given, runs after clipping
    and before the update (diagnostics read the gradients there). With world_size processes or accum
    micro-steps, see accumulate: (x, y) is then the whole step's batch and the loss is this process's share.
    """
    optimizer.zero_grad(set_to_none=True)
    if world_size * accum > 1:
        loss = accumulate(forward, x, y, autocast, rank, world_size, accum)
    else:
        with autocast():
            _, loss = forward(x, y)
        loss.backward()
    if grad_clip > 0:
        # one call, not one a tensor, where torch has the foreach kernels (not on every device, e.g. meta)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=model.device.type in ("cpu", "cuda"))
    if before_update is not None:
        before_update()
    optimizer.step()
    return loss.detach()


def accumulate(forward, x: torch.Tensor, y: torch.Tensor, autocast, rank: int, world_size: int,
               accum: int) -> torch.Tensor:
    """Forward and backward of this process's accum micro-batches of the step's batch (x, y); its loss share.

    Process r takes the r-th of world_size equal row blocks, cut into accum micro-batches. Each micro-batch's
    mean loss is weighted by its share of the whole batch's real targets (items differ in length), so the
    gradients, summed over micro-steps and averaged by DDP over processes (hence the factor world_size), are
    those of the whole batch's mean loss, as one process would compute it. DDP syncs on the last micro-step only.
    """
    targets = (y != PAD).sum()  # of the whole batch, as every process sees it: no collective needed
    rows = len(x) // (world_size * accum)
    total = torch.zeros((), device=x.device)
    for k in range(accum):
        lo = (rank * accum + k) * rows
        xk, yk = x[lo:lo + rows], y[lo:lo + rows]
        last = k == accum - 1
        with contextlib.nullcontext() if last or world_size == 1 else forward.no_sync():
            with autocast():
                _, loss = forward(xk, yk)
            share = (yk != PAD).sum() / targets
            (loss * (share * world_size)).backward()
        total += loss.detach() * share
    return total


class Batches:
    """Random training batches of the model's examples, drawn by tensor indexing from a seeded generator.

    Under torchrun every process holds the same generator and draws the same whole batch (its indices cost
    nothing), then trains on its own rows of it (train_step): the processes see distinct examples, and the
    run sees the same batches as one process would, for any number of processes.
    """

    def __init__(self, split: Split, model: Model, batch_size: int, seed: int):
        self.examples, self.batch_size = model.examples(split), batch_size
        self.generator = torch.Generator(device=split.x.device).manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        sel = torch.randint(len(self.examples), (self.batch_size,), generator=self.generator,
                            device=self.generator.device)
        return self.examples.get(sel)  # windows (B, block_size), (B,) or items (B, T), (B, T)


def print_samples(model: Model, data: Dataset, cfg: Config, step: int, tracker: Tracker, write) -> None:
    """A few samples, tagged by where they come from, to the console and TensorBoard."""
    if cfg.train.eval_samples == 0:
        return
    gen = torch.Generator(device=model.device).manual_seed(cfg.seed + step)
    pairs = generate_tagged(model, data, cfg.train.eval_samples, gen)
    write("  samples: " + ", ".join(f"{w} ({t})" if t != "new" else w for w, t in pairs))
    tracker.text("samples", "  \n".join(f"{w} ({t})" for w, t in pairs), step)


def fit_counts(model: Model, data: Dataset, cfg: Config, work_dir: Path, write=print,
               started: float | None = None) -> TrainResult:
    """Count models: one counting pass over the train split, then the same checkpoint as any model."""
    t0 = time.perf_counter()
    model.fit_split(data.train)
    seconds = time.perf_counter() - t0
    dev = split_nll(model, data.dev)
    wall = time.perf_counter() - (t0 if started is None else started)
    state = checkpoint.make_state(cfg, data, model, step=0, best_dev_loss=dev,
                                  seconds={"train": seconds, "wall": wall})
    checkpoint.save(work_dir / "model.pt", state)
    checkpoint.save(work_dir / "last.pt", state)
    write(f"fitted in {seconds:.2f}s: {model.num_params():,} parameters, dev nll {dev:.4f}")
    return TrainResult(0, dev, seconds, "fitted")


def compile_model(model: Model, example: tuple[torch.Tensor, torch.Tensor], write=print):
    """torch.compile the model's forward, or fall back to eager with a warning when it cannot."""
    # the probe must leave no trace (dropout's RNG draws, batch norm's running statistics), or a
    # compiled run, fresh or resumed, would not follow the same trajectory as an uninterrupted one
    rng, buffers = torch.get_rng_state(), [b.detach().clone() for b in model.buffers()]
    try:
        compiled = torch.compile(model)
        compiled(*example)  # compile now, so a failure shows here and not mid-run
        return compiled
    except Exception as e:  # noqa: BLE001 - any compiler failure means: run eagerly
        write(f"warning: --compile failed ({e.__class__.__name__}); training without it")
        return model
    finally:
        torch.set_rng_state(rng)
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)


@dataclass
class Loop:
    """What the training loop carries from step to step, set up once by set_up()."""

    model: Model
    forward: object  # the model, compiled, or under DDP
    optimizer: torch.optim.Optimizer
    batches: Batches
    autocast: object  # a context manager factory: bfloat16 where the GPU has it; weights stay float32
    rank: int
    world_size: int
    step: int = 0
    best: float | None = None
    train_before: float = 0.0  # seconds the run's earlier processes spent training, and in all
    wall_before: float = 0.0
    t0: float = 0.0  # when this process's loop began
    started: float = 0.0  # when this process began working on the run (set-up included)
    loss_sum: torch.Tensor | None = None  # the running loss stays where the loss is: no copy, no sync per step
    loss_count: int = 0
    first_bad: torch.Tensor | None = None  # first step with a non-finite loss, tracked without a host sync
    stopped: str = "finished"

    def trained(self) -> float:
        return self.train_before + time.perf_counter() - self.t0

    def reset_loss(self) -> None:
        self.loss_sum, self.loss_count = torch.zeros((), device=self.model.device), 0


def set_up(model: Model, data: Dataset, cfg: Config, state: dict | None, write, started: float | None) -> Loop:
    """Optimizer, batches, the resumed state if any, the compiled and DDP-wrapped forward: the loop before step 0."""
    tc = cfg.train
    rank, world_size = D.world()
    problem = D.split_problem(tc.batch_size, world_size, tc.grad_accum)
    if problem:
        raise ConfigError(problem)
    optimizer = make_optimizer(model, tc)
    batches = Batches(data.train, model, tc.batch_size, cfg.seed)
    if rank > 0 and state is None:  # the same weights everywhere (DDP copies rank 0's), but distinct dropout
        torch.manual_seed(cfg.seed + rank)
    loop = Loop(model, model, optimizer, batches, functools.partial(precision, model.device, tc.dtype), rank,
                world_size)
    before = (state or {}).get("seconds") or {}  # time the run's earlier processes spent
    loop.train_before, loop.wall_before = before.get("train", 0.0), before.get("wall", 0.0)
    if state is not None:  # resume exactly: weights are already loaded; now the rest of the state
        resume(loop, state, cfg, write)
    if tc.compile:
        order = batches.generator.get_state()
        x, y = batches.next()
        rows = len(x) // (world_size * tc.grad_accum)  # probe with a micro-batch: the shape each step runs
        loop.forward = compile_model(model, (x[:rows], y[:rows]), write)
        batches.generator.set_state(order)  # the compile probe must not shift the batch order
    loop.forward = D.wrap(model, loop.forward)  # under torchrun: DistributedDataParallel, which averages gradients
    loop.t0 = time.perf_counter()
    loop.started = loop.t0 if started is None else started
    loop.autocast()  # an impossible --dtype fails here, before the first step
    loop.reset_loss()
    loop.first_bad = torch.tensor(-1, device=model.device)
    return loop


def resume(loop: Loop, state: dict, cfg: Config, write) -> None:
    """The optimizer, step, best dev loss and random states of a checkpoint, or a one-line error."""
    try:
        loop.optimizer.load_state_dict(state["optimizer"])
        loop.step, loop.best = state["step"], state["best_dev_loss"]
        restore_rng(state["rng"], loop.batches, cfg.seed + loop.step, write)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise checkpoint.CheckpointError(
            f"cannot resume: the checkpoint's training state does not fit this run ({e.__class__.__name__}); "
            f"resume with the optimizer and device it was trained with, or train a new run") from None


def step_once(loop: Loop, tc: TrainConfig, observer=None) -> None:
    """Forward, backward, update at the scheduled rate; the loss joins the running sum."""
    lr = lr_at(loop.step, tc)
    for group in loop.optimizer.param_groups:
        group["lr"] = lr
    observing = observer is not None and observer.wants(loop.step)  # before forward: hooks record it
    x, y = loop.batches.next()
    before_update = functools.partial(observer.before_step, loop.step, lr) if observing else None
    loss = train_step(loop.forward, loop.model, loop.optimizer, x, y, grad_clip=tc.grad_clip,
                      autocast=loop.autocast, before_update=before_update, rank=loop.rank,
                      world_size=loop.world_size, accum=tc.grad_accum)
    if observing:
        observer.after_step(loop.step, lr)
    loop.loss_sum += loss
    loop.first_bad = torch.where((loop.first_bad < 0) & ~torch.isfinite(loss), loop.step, loop.first_bad)
    loop.loss_count += 1
    loop.step += 1


def log(loop: Loop, tc: TrainConfig, bar, tracker: Tracker) -> None:
    """The mean training loss since the last log, to the bar and TensorBoard; a non-finite one stops the run."""
    mean = (D.all_reduce(loop.loss_sum) / loop.loss_count).item()  # the only host sync between evaluations
    if not math.isfinite(mean):
        first_bad = D.all_reduce(torch.where(loop.first_bad < 0, tc.max_steps, loop.first_bad), "min")
        raise TrainingDiverged(
            f"the loss became {mean} at step {int(first_bad) + 1}; training stopped and the last "
            f"good checkpoint is kept — lower the learning rate (now {tc.lr:g}) or set --grad-clip")
    lr = lr_at(loop.step - 1, tc)  # the rate of the step just taken
    bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}", refresh=False)
    tracker.scalar("loss/train_minibatch_mean", mean, loop.step)
    tracker.scalar("lr", lr, loop.step)
    loop.reset_loss()


def save(loop: Loop, cfg: Config, data: Dataset, work_dir: Path, name: str) -> None:
    """Checkpoint the loop as work_dir/name (rank 0 writes; every process gives its random states)."""
    rng = rng_state(loop.batches)  # on every process: it gathers theirs
    if loop.rank == 0:
        seconds = {"train": loop.trained(), "wall": loop.wall_before + time.perf_counter() - loop.started}
        state = checkpoint.make_state(cfg, data, loop.model, loop.optimizer, loop.step, loop.best, rng, seconds)
        checkpoint.save(work_dir / name, state)


def evaluate_and_save(loop: Loop, data: Dataset, cfg: Config, work_dir: Path, tracker: Tracker, write) -> bool:
    """Exact dev NLL; save the best (model.pt) and the last (last.pt); a few samples. True: the target is reached."""
    tc = cfg.train
    D.sync_from_main(loop.model.buffers())  # e.g. batch norm's running statistics: rank 0's, as saved
    dev = split_nll(loop.model, data.dev)  # under torchrun each process evaluates its share
    if not math.isfinite(dev):  # weights gone bad after a finite loss: keep both checkpoints
        raise TrainingDiverged(
            f"the dev loss became {dev} at step {loop.step}; training stopped and the last good "
            f"checkpoint is kept — lower the learning rate (now {tc.lr:g}) or set --grad-clip")
    tracker.scalar("loss/dev", dev, loop.step)
    improved = loop.best is None or dev < loop.best
    if improved:
        loop.best = dev
        save(loop, cfg, data, work_dir, "model.pt")
    save(loop, cfg, data, work_dir, "last.pt")
    write(f"step {loop.step}: dev nll {dev:.4f}{' (best)' if improved else ''}, {loop.trained():.1f}s")
    print_samples(loop.model, data, cfg, loop.step, tracker, write)
    if tc.target_loss is not None and dev <= tc.target_loss:
        write(f"reached target dev nll {tc.target_loss} at step {loop.step} after {loop.trained():.1f}s of training")
        return True
    return False


def stop_requested(loop: Loop, stop: StopRequest, logging: bool) -> bool:
    """Whether to stop now; every process must stop at the same step: under torchrun they agree at logging steps."""
    if logging:
        return D.any_true(stop.requested is not None, loop.model.device)
    return stop.requested is not None and loop.world_size == 1


def stop_and_save(loop: Loop, stop: StopRequest, cfg: Config, data: Dataset, work_dir: Path, saved: bool,
                  write) -> None:
    """Save last.pt (unless an evaluation just did) and say how to continue."""
    if not saved:
        save(loop, cfg, data, work_dir, "last.pt")
    loop.stopped = "interrupted"
    again = "the same torchrun command and --resume" if loop.world_size > 1 else \
        f"makemore --work-dir {work_dir} --resume"
    write(f"{stop.requested or 'a stop request'} at step {loop.step}: saved {work_dir / 'last.pt'}; "
          f"continue with: {again}")


def train(model: Model, data: Dataset, cfg: Config, work_dir: Path, state: dict | None = None,
          tracker: Tracker | None = None, progress: bool = True, write=tqdm.write,
          observer=None, started: float | None = None) -> TrainResult:
    """Train from scratch or from a checkpoint state; writes best (model.pt) and last (last.pt).

    started: when this process began working on the run (time.perf_counter()), so the wall-clock time
    saved with each checkpoint covers set-up too; the times of earlier processes come from state.
    observer, if given, is asked observer.wants(step) before each forward pass; on the steps it
    wants, it is called as observer.before_step(step, lr) after the backward pass and
    observer.after_step(step, lr) after the optimizer step (e.g. diagnostics at an interval).
    """
    tracker = tracker or Tracker(None)
    if model.needs_fit:
        return fit_counts(model, data, cfg, work_dir, write, started)
    tc = cfg.train
    if D.world()[0] != 0:  # under torchrun: rank 0 alone writes, prints and logs
        tracker, progress, write = Tracker(None), False, lambda message: None
    loop = set_up(model, data, cfg, state, write, started)
    bar = tqdm(total=tc.max_steps, initial=loop.step, disable=not progress, desc=cfg.model_type, dynamic_ncols=True)
    model.train()
    with StopRequest() as stop, contextlib.closing(bar):
        while loop.step < tc.max_steps:
            step_once(loop, tc, observer)  # forward, backward, update
            bar.update(1)
            evaluating = loop.step % tc.eval_interval == 0 or loop.step == tc.max_steps
            logging = loop.step % tc.log_interval == 0 or evaluating
            stopping = stop_requested(loop, stop, logging)
            if logging or stopping:  # timing and logging
                log(loop, tc, bar, tracker)
            # evaluate before honouring a stop: a resumed run must not skip this step's evaluation
            if evaluating and evaluate_and_save(loop, data, cfg, work_dir, tracker, write):
                loop.stopped = "target"
                break
            if stopping and loop.step < tc.max_steps:  # at max_steps the run has simply finished
                stop_and_save(loop, stop, cfg, data, work_dir, evaluating, write)
                break
    return TrainResult(loop.step, loop.best, loop.trained(), loop.stopped, loop.wall_before)
