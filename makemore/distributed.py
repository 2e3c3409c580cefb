"""One run over many processes with torchrun: PyTorch's DistributedDataParallel, nothing home-made.

torchrun starts the processes and sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous address);
plan() reads them, picks the backend and each process's device; start() joins the process group.
Outside torchrun every helper here is a no-op for a single process (rank 0 of 1).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import ConfigError

TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
# how gloo and nccl word a lost peer or a timeout when they raise a plain RuntimeError (e.g. from the backward)
PEER_WORDS = ("gloo", "nccl", "NCCL", "Connection reset", "Connection closed", "Timed out", "timed out", "c10d")


class PeerLost(RuntimeError):
    """Another process of the run died or stopped answering: this one stops too, with one line."""


class Aborted(RuntimeError):
    """Rank 0 refused the run (and said why); the other ranks stop without a word."""


@dataclass(frozen=True)
class Plan:
    """Where this process stands in a torchrun launch: its ranks, the world size, backend and device."""

    rank: int
    local_rank: int
    world_size: int
    backend: str  # "nccl" on CUDA GPUs, "gloo" on CPUs
    device: str  # "cuda:LOCAL_RANK" or "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched(env=os.environ) -> bool:
    """Whether this process was started by torchrun (it sets RANK, LOCAL_RANK and WORLD_SIZE)."""
    return all(name in env for name in TORCHRUN_VARS)


def env_rank(env=os.environ) -> int:
    """This process's global rank from torchrun's environment (0 outside torchrun)."""
    return int(env.get("RANK", 0)) if launched(env) else 0


def plan(env, device: str = "auto", cuda_count: int = 0) -> Plan | None:
    """The backend and device of this process from torchrun's environment; None outside torchrun.

    A pure function of its arguments (env, the --device asked for, the machine's CUDA GPU count), so the
    GPU path is tested without a GPU: nccl on cuda:LOCAL_RANK where there are GPUs (auto or cuda), else gloo
    on the CPU. One-line errors for what DDP cannot do.
    """
    if not launched(env):
        return None
    try:
        rank, local, world = (int(env[name]) for name in TORCHRUN_VARS)
    except ValueError:
        raise ConfigError(f"torchrun's RANK, LOCAL_RANK and WORLD_SIZE must be integers, got "
                          f"{', '.join(repr(env[n]) for n in TORCHRUN_VARS)}: launch with torchrun") from None
    if not (0 <= rank < world and 0 <= local):
        raise ConfigError(f"RANK {rank}, WORLD_SIZE {world} and LOCAL_RANK {local} are inconsistent: "
                          f"launch with torchrun")
    kind = device.split(":")[0]
    if kind == "cuda" and ":" in device and world > 1:
        raise ConfigError(f"--device {device}: under torchrun each process takes the GPU of its LOCAL_RANK; "
                          f"pass --device cuda (or auto)")
    if kind not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"--device {device}: torchrun training runs on cpu (gloo) or cuda (nccl); "
                          f"pass --device cpu or cuda")
    if kind == "cpu" or (kind == "auto" and cuda_count == 0):
        return Plan(rank, local, world, "gloo", "cpu")
    if cuda_count == 0:
        raise ConfigError(f"--device {device}: this machine has no CUDA GPU; pass --device cpu to train with gloo")
    if local >= cuda_count:
        raise ConfigError(f"LOCAL_RANK {local} has no GPU: this machine has {cuda_count}; start at most "
                          f"{cuda_count} processes a machine (--nproc_per_node {cuda_count})")
    return Plan(rank, local, world, "nccl", f"cuda:{local}")


def this_plan(device: str = "auto") -> Plan | None:
    """plan() for this process and machine."""
    return plan(os.environ, device, torch.cuda.device_count() if torch.cuda.is_available() else 0)


@contextlib.contextmanager
def process_group(p: Plan, timeout_s: float):
    """Join the run's process group for the block, then leave it; a collective waits at most timeout_s."""
    if p.backend == "nccl":
        torch.cuda.set_device(p.device)
    try:
        dist.init_process_group(p.backend, rank=p.rank, world_size=p.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as e:  # e.g. the rendezvous timed out: torchrun's env is wrong
        raise PeerLost(f"process {p.rank} could not join the other {p.world_size - 1} process(es) "
                       f"({first_line(e)}); check torchrun's --nnodes and --rdzv-endpoint") from None
    try:
        yield p
        # leave together: a process that closes its group and exits while a peer is still writing or
        # sampling can abort in gloo's threads at exit (SIGABRT: seen once in the test suite), failing the run
        dist.barrier()
    except RuntimeError as e:  # a peer died mid-collective (gloo raises it from the backward), or timed out
        if not peer_failure(e):
            raise
        raise PeerLost(f"process {p.rank} of {p.world_size}: another process of this run stopped "
                       f"({first_line(e)}); its checkpoints are kept: continue with the same torchrun "
                       f"command and --resume") from None
    finally:
        with contextlib.suppress(Exception):  # a broken group may fail to close: exiting is enough then
            dist.destroy_process_group()


def peer_failure(e: BaseException) -> bool:
    """Whether an error is the process group's: a lost connection to a peer, or a collective that timed out."""
    text = str(e)
    return isinstance(e, dist.DistError) or any(word in text for word in PEER_WORDS)


def first_line(e: BaseException) -> str:
    """The first line of an error's message (gloo and nccl write pages)."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip().split("\n", 1)[0])  # gloo's [source file:line]
    return text.split(". ", 1)[0][:160] or e.__class__.__name__


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def backend() -> str:
    """The process group's backend (gloo, nccl), or "none" outside one."""
    return dist.get_backend() if world()[1] > 1 else "none"


def is_main() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return world()[0] == 0


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or min, max) a tensor over every process, in place; the tensor itself outside a process group."""
    if world()[1] > 1:
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
                                    "max": dist.ReduceOp.MAX}[op])
    return tensor


def any_true(flag: bool, device: torch.device) -> bool:
    """Whether flag holds on any process (every process gets the same answer)."""
    if world()[1] == 1:
        return flag
    return bool(all_reduce(torch.tensor(int(flag), device=device), "max"))


def gather(obj) -> list:
    """Every process's obj, in rank order, on every process."""
    out = [None] * world()[1]
    dist.all_gather_object(out, obj)
    return out


def from_main(obj):
    """Rank 0's obj on every process (obj itself outside a process group)."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main_first(fn):
    """Run fn on rank 0 while the others wait; if it raises, rank 0 re-raises and the others raise Aborted.

    For what only rank 0 may do before training (the run folder, its lock, its checks), so that a refusal
    there ends every process at once instead of leaving them waiting at the first collective.
    """
    error = None
    if is_main():
        try:
            fn()
        except Exception as e:
            error = e
    message = from_main(None if error is None else str(error))
    if error is not None:
        raise error
    if message is not None:
        raise Aborted(message)


def sync_from_main(tensors) -> None:
    """Copy rank 0's values of these tensors (weights, buffers) into every other process's."""
    if world()[1] > 1:
        for t in tensors:
            dist.broadcast(t.data, src=0)


def wrap(model: torch.nn.Module, forward: torch.nn.Module) -> torch.nn.Module:
    """forward (the model or its compiled form) under DistributedDataParallel in a process group, else as is.

    DDP broadcasts rank 0's weights at once, so every process starts equal, and averages the gradients in
    the backward pass (unless under forward.no_sync()).
    """
    if world()[1] == 1:
        return forward
    from torch.nn.parallel import DistributedDataParallel as DDP

    device = model.device
    return DDP(forward, device_ids=[device.index] if device.type == "cuda" else None)


def split_problem(batch_size: int, world_size: int, accum: int) -> str | None:
    """Why a global batch cannot be cut into world_size x accum equal micro-batches, with what would divide it."""
    parts = world_size * accum
    if batch_size % parts == 0:
        return None
    below, above = batch_size - batch_size % parts, batch_size - batch_size % parts + parts
    near = f"{below} or {above}" if below else f"{above}"
    return (f"train.batch_size {batch_size} does not split into {world_size} process(es) x {accum} micro-step(s) "
            f"= {parts} equal parts: use a multiple of {parts} such as {near}, or change --grad-accum or the "
            f"process count")
