"""Stopping and resuming exactly: every random state a checkpoint carries, and a stop request on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import torch

from . import distributed as D

if TYPE_CHECKING:
    from .train import Batches


def rng_state(batches: Batches) -> dict:
    """Every random state an exact resume needs: the batch order, torch's CPU generator, the GPU's (dropout).

    Under torchrun every process's own generators too (their dropout differs), gathered: call it on every process.
    """
    device = batches.generator.device
    rng = {"device": device.type, "batches": batches.generator.get_state(), **process_rng(device)}
    if D.world()[1] > 1:
        rng["ranks"] = D.gather(process_rng(device))
    return rng


def process_rng(device: torch.device) -> dict:
    """This process's torch generators: the CPU's and its GPU's."""
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict, batches: Batches, reseed: int, write) -> None:
    """Continue the saved random states; on another kind of device than they were saved on (a GPU run resumed
    on a CPU, or the reverse), the batch order cannot continue exactly, so it is seeded afresh with a warning."""
    rank = D.world()[0]
    ranks = rng.get("ranks") or [rng]  # a checkpoint of one process holds one process's generators
    if rank < len(ranks):
        rng = {**rng, **ranks[rank]}
    else:  # more processes than wrote the checkpoint: the new ones get fresh dropout streams (batches continue)
        rng = {k: v for k, v in rng.items() if k not in ("torch", "cuda")}
        torch.manual_seed(reseed + rank)
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    saved, here = rng.get("device", batches.generator.device.type), batches.generator.device.type
    if saved != here:
        batches.generator.manual_seed(reseed)
        write(f"warning: this run was trained on {saved} and continues on {here}: its batch order cannot continue "
              f"exactly, so it is seeded afresh (the losses will differ from an uninterrupted run)")
        return
    batches.generator.set_state(rng["batches"])
    if "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], batches.generator.device)


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to save and stop; a second one exits at once."""

    def __init__(self):
        self.requested = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt  # second signal: stop now, without saving
        self.requested = signal.Signals(signum).name

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
