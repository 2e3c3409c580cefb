"""Whole runs, as the CLI and the sweep use them: configure, load data, train, report, sample, evaluate."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

from . import checkpoint, configfile
from . import config as C
from . import distributed as D
from .compare import RESULTS
from .data import Dataset, load_dataset
from .device import autocast_dtype, resolve_device
from .diagnostics import DIAG_FILE, Diagnostics
from .evaluate import evaluate, evaluate_labels, label_lines, nll_table
from .labeled import load_labeled
from .mix import MIXTURE_FILE
from .models import DEFAULT_MODEL, MODELS, Model, create_model
from .output import dumps
from .plots import FIGURES
from .sample import generate_tagged
from .tracking import Tracker
from .train import train

DIVERGED = "diverged.json"  # written by a sweep when a run diverged, so a resumed sweep does not retry it
# what a run writes into its folder: a fresh run (--overwrite) removes exactly these, nothing else
RUN_FILES = ("model.pt", "last.pt", "config.yaml", RESULTS, DIVERGED, DIAG_FILE)
LOCK_FILE = ".lock"  # see RunLock
RUN_GLOBS = (("tb", "events.out.tfevents.*"), *(("plots", name) for name in FIGURES))
TRAINED = ("model.pt", "last.pt", RESULTS)  # any of these: the folder holds a run (trained, or a mixture's results)


def mixture_files(path: Path) -> list[Path]:
    """What makemore mix writes into a folder besides results.json: mixture.json and its parts, part0.pt, ..."""
    return [path / MIXTURE_FILE, *(f for f in path.glob("part*.pt") if re.fullmatch(r"part\d+\.pt", f.name))]


def build_config(config_file: str | None = None, overrides: dict | None = None, base: dict | None = None) -> C.Config:
    """Defaults < the model's training defaults < base/YAML file < overrides ('section.key': value)."""
    raw = dict(base or {})
    if config_file:
        raw = configfile.load_yaml(config_file)
    for key, value in (overrides or {}).items():
        configfile.set_dotted(raw, key, value)
    return C.resolve(raw, MODELS, DEFAULT_MODEL)


def check_work_dir(path: Path, resume: bool, overwrite: bool) -> None:
    """Never silently replace an earlier run, nor resume one that is not there."""
    if resume:
        if not (path / "last.pt").exists():
            raise checkpoint.CheckpointError(f"nothing to resume: {path / 'last.pt'} does not exist; "
                                             f"train without --resume first")
    elif (path / MIXTURE_FILE).exists() and not overwrite:  # a folder holds one kind of run
        raise C.ConfigError(f"{path} holds a mixture (made by makemore mix): pass --overwrite to replace it with "
                            f"a trained run, or choose another --work-dir")
    elif any((path / name).exists() for name in TRAINED) and not overwrite:
        raise C.ConfigError(f"{path} already holds a trained run: pass --resume to continue it, "
                            f"--overwrite to replace it, or choose another --work-dir")


def clear_run_files(path: Path, resume: bool) -> None:
    """Remove what an earlier run wrote that would outlive this one: its results (a resumed run is unfinished
    until it ends) or, for a fresh run, every file a run writes, so no stale result, curve or figure survives."""
    names = (RESULTS, DIVERGED) if resume else RUN_FILES
    stale = [path / name for name in names]
    if not resume:  # a fresh run replaces any kind of run: its curves and figures, or a mixture's files
        stale += [f for d, g in RUN_GLOBS for f in (path / d).glob(g)] + mixture_files(path)
    for file in stale:
        file.unlink(missing_ok=True)
    for folder in ("tb", "plots"):
        if not resume and (path / folder).is_dir() and not any((path / folder).iterdir()):
            (path / folder).rmdir()


def make_work_dir(path: Path) -> None:
    """Create the run folder and check it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise C.ConfigError(f"cannot write to work directory {path}: {e.strerror}; "
                            f"choose another with --work-dir") from None


class RunInUse(C.ConfigError):
    """Another process is training this run folder."""


class RunLock:
    """An exclusive lock on a run folder, so one process at a time trains it.

    An flock on RUN_DIR/.lock, which holds the holder's process id for the message. The kernel drops a
    lock when its process ends, however it ends, so the lock of a dead process is simply taken over.
    Taking it also removes the temporary files dead processes left mid-write. Where there is no flock
    (Windows), there is no lock.
    """

    def __init__(self, path: Path):
        self.path, self.fd = Path(path), None

    def __enter__(self) -> RunLock:
        if fcntl is None:
            return self
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunInUse(f"{self.path} is being trained by another process (id {holder}): wait for it to "
                           f"finish, or choose another --work-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self.fd = fd
        for tmp in self.path.glob(".*.tmp"):  # named .NAME.PID.tmp by checkpoint.atomic_write
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not process_alive(int(pid)):
                tmp.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock; the file stays, so no other process can lock a second one
            self.fd = None


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def warn(message: str) -> None:
    """Warnings go to stderr, so stdout stays the run's report."""
    print(message, file=sys.stderr)


def run_device(cfg: C.Config) -> torch.device:
    """The device this process trains on: the config's, or under torchrun the one its LOCAL_RANK gets."""
    p = D.this_plan(cfg.train.device)
    return torch.device(p.device) if p else resolve_device(cfg.train.device)


def setup_torch(cfg: C.Config) -> torch.device:
    """The run's device (checked, with its precision), and torch's CPU threads; one-line errors."""
    device = run_device(cfg)
    autocast_dtype(device, cfg.train.dtype)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    return device


def setup(cfg: C.Config, warn=warn) -> tuple[Dataset, Model]:
    """A config's data and fresh model (seeded), both on its device (checked): where training, lr-find and the
    checks start."""
    device = setup_torch(cfg)
    load = load_labeled if cfg.data.labeled else load_dataset
    data = load(cfg.data.input, cfg.data.encoding, cfg.data.max_length, cfg.data.seed,
                cfg.data.dev_fraction, cfg.data.test_fraction, warn=warn)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length, data.labels)
    return data.to(device), model.to(device)


def resume_state(work_dir: Path, overrides: dict | None) -> tuple[C.Config, Dataset, Model, dict]:
    """The config, data, model and training state of a run to resume, with the overrides it can honour."""
    state = checkpoint.load(work_dir / "last.pt")
    saved_cfg, data, model = checkpoint.restore(state)
    raw = C.to_dict(saved_cfg)
    for key, value in (overrides or {}).items():  # e.g. more --max-steps; the model must stay as it was
        configfile.set_dotted(raw, key, value)
    cfg = C.resolve(raw, MODELS, DEFAULT_MODEL)
    now, saved = C.to_dict(cfg), C.to_dict(saved_cfg)
    if now["model"] != saved["model"]:
        raise C.ConfigError("a resumed run keeps its model: drop the model options, or train a new run")
    changed = [f"data.{k}" for k in saved["data"] if now["data"][k] != saved["data"][k]]
    changed += ["seed"] if now["seed"] != saved["seed"] else []
    if changed:  # its split, vocabulary, batch order and random state are saved: another cannot be honoured
        raise C.ConfigError(f"a resumed run keeps its data and seeds ({', '.join(changed)} differ): drop "
                            f"--input, --split-seed, --seed and the data options, or train a new run")
    if cfg.train.optimizer != saved_cfg.train.optimizer:  # the saved optimizer state fits only its own kind
        raise C.ConfigError(f"a resumed run keeps its optimizer ({saved_cfg.train.optimizer}): drop --optimizer, "
                            f"or train a new run")
    setup_torch(cfg)
    return cfg, data, model, state


def train_run(cfg: C.Config, resume: bool = False, overwrite: bool = False, progress: bool = True,
              write=print, overrides: dict | None = None) -> dict:
    """Train (or resume) one run into cfg.work_dir, then report exact losses of the best checkpoint.

    Every check comes before the first write, so a refused command changes nothing; the folder is then
    locked for the whole run, and checked again under the lock (another process may have changed it).

    Under torchrun every process loads the data and model and trains (DDP), while rank 0 alone locks and
    writes the run folder and prints; a count model is fitted by rank 0 alone, the others end at once.
    """
    t_start = time.perf_counter()
    work_dir = Path(cfg.work_dir)
    p = D.this_plan(cfg.train.device)
    if p and not p.main:
        write, progress = (lambda message: None), False
    state = None
    if resume:
        check_work_dir(work_dir, resume, overwrite)
        cfg, data, model, state = resume_state(work_dir, overrides)
    else:  # data and model first: a bad input fails before the run folder is touched
        data, model = setup(cfg)
        if p is None or p.main:  # the others leave the folder to rank 0, which may be writing it already
            check_work_dir(work_dir, resume, overwrite)
    if p and model.needs_fit:
        if not p.main:
            return {"stopped": "not rank 0", "samples": []}
        write(f"note: a {cfg.model_type} model is fitted in one counting pass: rank 0 fits it alone and the other "
              f"{p.world_size - 1} process(es) end now")
        p = None
    if p is None:
        make_work_dir(work_dir)
        with RunLock(work_dir):
            check_work_dir(work_dir, resume, overwrite)
            if resume:  # read again under the lock: the state this process continues is the latest one
                cfg, data, model, state = resume_state(work_dir, overrides)
                write(f"resuming {work_dir / 'last.pt'} at step {state['step']}")
            clear_run_files(work_dir, resume)  # from here on the folder is this run's
            return _train_and_report(cfg, data, model, state, work_dir, progress, write, t_start)
    problem = D.split_problem(cfg.train.batch_size, p.world_size, cfg.train.grad_accum)
    if problem:
        raise C.ConfigError(problem)
    with D.process_group(p, cfg.train.ddp_timeout), contextlib.ExitStack() as held:
        def claim() -> None:  # rank 0: the folder, its lock and the checks, as for one process
            make_work_dir(work_dir)
            held.enter_context(RunLock(work_dir))
            check_work_dir(work_dir, resume, overwrite)

        D.on_main_first(claim)
        if resume:  # read again, the folder locked: every process continues the latest state
            cfg, data, model, state = resume_state(work_dir, overrides)
            write(f"resuming {work_dir / 'last.pt'} at step {state['step']} on {p.world_size} processes")
        if p.main:
            clear_run_files(work_dir, resume)
        return _train_and_report(cfg, data, model, state, work_dir, progress, write, t_start)


def _train_and_report(cfg: C.Config, data: Dataset, model: Model, state: dict | None, work_dir: Path,
                      progress: bool, write, t_start: float) -> dict:
    """The locked part of train_run: train, evaluate the best checkpoint, write results.json, sample."""
    resume = state is not None
    rank, world_size = D.world()
    main = rank == 0  # under torchrun rank 0 alone writes the folder; every process trains and evaluates
    write(data.summary())
    device = run_device(cfg)
    data = data.to(device)
    model = model.to(device)
    if main:
        checkpoint.save_text(work_dir / "config.yaml", C.dump_yaml(cfg), "config")
    size = "counts fitted in one pass" if model.needs_fit else f"{model.num_params():,} parameters"
    write(f"model: {cfg.model_type}, {size}; run folder {work_dir}")
    amp = autocast_dtype(device, cfg.train.dtype) if model.trainable else None
    where = f"{world_size} processes (DDP, {D.backend()}), global batch {cfg.train.batch_size}" \
        if world_size > 1 else str(device)
    accum = f", {cfg.train.grad_accum} micro-steps a step" if cfg.train.grad_accum > 1 else ""
    write(f"device: {where}{accum}" + (", training in bfloat16 autocast" if amp else ""))

    tracker = Tracker(work_dir / "tb" if main else None)
    tracker.text("config", "```\n" + C.dump_yaml(cfg) + "\n```", 0)
    interval = cfg.train.diagnostics_interval  # per-layer statistics to diagnostics.jsonl and TensorBoard
    observer = Diagnostics(model, interval, work_dir / DIAG_FILE, tracker, append=resume) \
        if interval and main else None
    try:
        result = train(model, data, cfg, work_dir, state, tracker, progress=progress, observer=observer,
                       started=t_start)
    finally:
        tracker.close()
    if result.stopped == "interrupted":
        return {"stopped": "interrupted", "step": result.step}

    best = checkpoint.load(work_dir / "model.pt") if main else None  # the others get its weights from rank 0
    if main:
        model.load_state_dict(best["model"])
    D.sync_from_main(model.state_dict().values())
    losses = evaluate(model, data)
    if data.labels:  # every process evaluates its share of each label too
        losses["labels"] = evaluate_labels(model, data)
    if not main:
        return {"stopped": result.stopped, "samples": []}
    results = {"type": cfg.model_type, "params": model.num_params(), "steps": best["step"],
               "final_step": result.step, "train_seconds": round(result.seconds, 2),
               "wall_seconds": round(result.wall_before + time.perf_counter() - t_start, 2),
               "stopped": result.stopped, **losses}
    checkpoint.save_text(work_dir / RESULTS, dumps(results, indent=2) + "\n", "results")
    for line in nll_table(losses, f"best checkpoint (step {best['step']}), ") + label_lines(losses):
        write(line)
    if result.stopped == "target":
        write(f"time to target dev nll {cfg.train.target_loss}: {results['wall_seconds']:.1f}s wall clock")
    # a few words from the best model, already in memory: no reload, no second encoding of the data
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    s = cfg.sample
    return {**results, "samples": generate_tagged(model, data, 10, gen, s.max_length, temperature=s.temperature,
                                                  top_k=s.top_k, prefix=s.prefix)}
