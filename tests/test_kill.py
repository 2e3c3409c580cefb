"""SIGKILL a real training process at random moments, during checkpoint writes too, again and again.

After every kill the checkpoints on disk must load and the next process must resume from them; at the
end the run finishes and no temporary file is left. Run with -s to see the table of trials.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from makemore import checkpoint
from makemore.cli import main

# A fork server: it imports torch and makemore once, then for each JSON list of arguments on stdin
# forks a child that runs makemore's own CLI on them, prints "pid N" and, once the child is gone,
# "status S"; so a kill costs no interpreter start. The child writes each checkpoint in two halves
# with a pause between, so that kills land mid-write often; everything else (temp file, fsync,
# os.replace, resume) is the real code path.
FORK_SERVER = """
import io, json, os, sys, time
import torch
import torch._dynamo, torch.utils.tensorboard  # slow lazy imports (the optimizer, logging): once, not per child
import makemore.cli
real_save = torch.save

def save_in_halves(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    time.sleep(0.03)
    f.write(data[len(data) // 2:])

torch.set_num_threads(1)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        torch.save = save_in_halves
        os._exit(makemore.cli.main(json.loads(line)))
    print("pid", pid, flush=True)
    print("status", os.waitpid(pid, 0)[1], flush=True)
"""
TRIALS = 6
SEED = 20261128


def temp_files(work: Path, pid: int | None = None) -> list[str]:
    """Checkpoint temp files in work; only process pid's if given (checkpoint.save names them by pid)."""
    end = f".{pid}.tmp" if pid is not None else ".tmp"
    names = os.listdir(work) if work.exists() else []
    return sorted(n for n in names if n.endswith(end) and n.startswith((".model.pt.", ".last.pt.")))


def stamp(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


class Training:
    """One training process from the fork server: resumes the run if it has a last checkpoint, else starts it."""

    def __init__(self, server: subprocess.Popen, work: Path, tiny_file: Path):
        if (work / "last.pt").exists():
            args = ["--resume", "-o", str(work)]
        else:  # --overwrite: a kill between the first best and last checkpoints leaves a best-only folder
            args = ["-i", str(tiny_file), "-o", str(work), "--overwrite", "--max-steps", "100000",
                    "--eval-interval", "5", "--batch-size", "32"]
        self.server = server
        server.stdin.write(json.dumps([*args, "--no-progress"]) + "\n")
        server.stdin.flush()
        word, pid = server.stdout.readline().split()
        assert word == "pid"
        self.pid = int(pid)

    def alive(self) -> bool:
        """It never ends by itself (100,000 steps): once gone, it crashed (e.g. a resume that failed)."""
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def wait_until(self, ready, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.alive(), f"training exited by itself: {self.server.stdout.readline()}"
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.001)

    def kill(self) -> int:
        """SIGKILL it; its wait status."""
        os.kill(self.pid, signal.SIGKILL)
        word, status = self.server.stdout.readline().split()
        assert word == "status"
        return int(status)


def kill_once(server, work: Path, tiny_file: Path, mode: str, rng: random.Random) -> list[str]:
    """Start or resume training, SIGKILL it at a random moment; the temp files it had at that moment."""
    before = stamp(work / "last.pt")
    proc = Training(server, work, tiny_file)
    # training has begun once this process has written a whole checkpoint (so a kill leaves at least one)
    proc.wait_until(lambda: stamp(work / "last.pt") != before)
    if mode == "mid-write":  # during the k-th checkpoint write from now, a random way into it
        for _ in range(rng.randint(1, 4)):
            proc.wait_until(lambda: not temp_files(work, proc.pid))
            proc.wait_until(lambda: temp_files(work, proc.pid))
        time.sleep(rng.uniform(0, 0.02))
    else:
        time.sleep(rng.uniform(0, 0.6))
    torn = temp_files(work, proc.pid)
    status = proc.kill()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL  # killed, not exited on its own
    return torn


def check_checkpoints(work: Path) -> list[str]:
    """Load and restore every checkpoint on disk (a torn one raises); describe them."""
    intact = []
    for name in ("model.pt", "last.pt"):
        if (work / name).exists():
            state = checkpoint.load(work / name)
            checkpoint.restore(state)
            intact.append(f"{name} (step {state['step']})")
    return intact


def test_sigkill_at_random_moments_never_tears_a_checkpoint(tmp_path, tiny_file):
    rng = random.Random(SEED)
    work = tmp_path / "run"
    modes = ["any moment", "mid-write"] * (TRIALS // 2)
    rng.shuffle(modes)
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    steps, rows = [0], []
    try:
        for trial, mode in enumerate(modes, 1):
            torn = kill_once(server, work, tiny_file, mode, rng)
            intact = check_checkpoints(work)
            assert intact, "a kill after training began must leave a checkpoint"
            step = checkpoint.load(work / "last.pt")["step"] if (work / "last.pt").exists() else 0
            assert step >= steps[-1]  # each process resumed where the last one's checkpoint left off
            steps.append(step)
            rows.append(f"| {trial} | {mode} | {', '.join(torn) or 'none'} | {', '.join(intact)} |")
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    print("\n| kill | when | temp file at the kill | checkpoints after it, all loaded and restored |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    assert any(row.split("|")[3].strip() != "none" for row in rows)  # some kill did land mid-write
    final = steps[-1] + 10
    assert main(["--resume", "-o", str(work), "--max-steps", str(final), "--no-progress"]) == 0
    assert checkpoint.load(work / "last.pt")["step"] == final
    assert temp_files(work) == []  # temp files torn by the kills are cleared by the next save
    print(f"resumed after {TRIALS} kills: finished at step {final}; no temp files left")
