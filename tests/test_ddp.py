"""One run over many processes: torchrun with DDP on the CPU (gloo), against one process with the same global batch.

The batch order is the same by construction (every process draws the same global batch and trains on its
own rows of it), so the per-step training losses of 2 processes equal one process's up to float rounding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from makemore import checkpoint
from makemore import distributed as D
from makemore.api import load
from makemore.cli import main
from makemore.config import ConfigError
from makemore.diagnostics import read_losses
from makemore.evaluate import split_nll, target_nlls
from makemore.models import create_model
from makemore.runs import build_config, train_run
from makemore.train import Batches, make_optimizer, train_step

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5
TINY = {"mlp": {"model.type": "mlp", "model.block_size": 3, "model.n_embd": 8, "model.n_embd2": 32},
        "transformer": {"model.type": "transformer", "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16,
                        "model.dropout": 0.0}}


def flags(settings: dict) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


def settings(model: str, tiny_file, steps: int, batch: int) -> dict:
    """A tiny run that logs every step's loss (constant rate: a shorter run is a prefix of a longer one)."""
    return {**TINY[model], "data.input": str(tiny_file), "train.max_steps": steps, "train.batch_size": batch,
            "train.eval_interval": 5, "train.log_interval": 1, "train.schedule": "constant", "train.warmup_steps": 0,
            "train.eval_samples": 0, "train.threads": 1}


def one_process(work: Path, values: dict) -> list[tuple[int, float]]:
    """Train in this process; the per-step training losses it logged."""
    train_run(build_config(overrides={**values, "work_dir": str(work)}), progress=False, write=lambda m: None)
    return read_losses(work)["train"]


def torchrun(args: list[str], timeout: float = 180, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    """makemore under torchrun (torch.distributed.run is torchrun's module) with 2 processes of 1 thread."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "makemore", *args, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, **popen)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_losses(got: list[tuple[int, float]], want: list[tuple[int, float]], steps: range) -> None:
    got, want = dict(got), dict(want)
    assert [s for s in steps if s in got] == list(steps)
    worst = max(abs(got[s] - want[s]) for s in steps)
    assert worst < TOLERANCE, f"per-step losses differ by up to {worst:.2e}"


# --- the pure parts: no process group needed --------------------------------------------------------------

def test_backend_and_device_come_from_torchruns_environment():
    env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}
    assert D.plan({}, "auto", 8) is None  # not under torchrun: one process, as always
    assert D.plan(env, "auto", 0) == D.Plan(1, 1, 2, "gloo", "cpu")
    assert D.plan(env, "auto", 2) == D.Plan(1, 1, 2, "nccl", "cuda:1")
    assert D.plan(env, "cuda", 8).device == "cuda:1"
    assert D.plan(env, "cpu", 8) == D.Plan(1, 1, 2, "gloo", "cpu")
    assert D.plan({**env, "RANK": "5", "WORLD_SIZE": "8"}, "auto", 4).device == "cuda:1"  # second machine
    for bad, device, gpus, words in [(env, "cuda", 0, "no CUDA GPU"), (env, "cuda", 1, "--nproc_per_node 1"),
                                     (env, "cuda:0", 2, "LOCAL_RANK"), (env, "mps", 0, "on cpu .gloo. or cuda"),
                                     ({**env, "RANK": "2"}, "cpu", 0, "inconsistent"),
                                     ({**env, "RANK": "x"}, "cpu", 0, "integers")]:
        with pytest.raises(ConfigError, match=words):
            D.plan(bad, device, gpus)


def test_a_batch_that_does_not_split_is_refused_with_what_would():
    assert D.split_problem(96, 3, 2) is None
    message = D.split_problem(100, 3, 2)
    assert "multiple of 6" in message and "96 or 102" in message
    assert "multiple of 8" in D.split_problem(4, 2, 4) and " 8," in D.split_problem(4, 2, 4)


@pytest.mark.parametrize("args, words", [(["--grad-accum", "0"], "grad_accum must be at least 1"),
                                         (["--grad-accum", "3", "--batch-size", "32"], "multiple of 3")])
def test_bad_grad_accum_is_one_line_exit_2(args, words, tmp_path, tiny_file, capsys):
    assert main(["-i", str(tiny_file), "-o", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "r").exists()


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_rows_of_every_process_and_micro_step_give_the_whole_batchs_step(model, tiny_data):
    """Loss shares and gradients of 2 processes x 2 micro-steps, averaged as DDP does, are one whole batch's."""
    cfg = build_config(overrides=TINY[model])

    def fresh():
        torch.manual_seed(0)
        m = create_model(model, cfg.model, tiny_data.vocab.size, tiny_data.max_item_length)
        return m, make_optimizer(m, cfg.train)

    x, y = Batches(tiny_data.train, fresh()[0], 16, seed=0).next()
    whole, opt = fresh()
    want = train_step(whole, whole, opt, x, y)
    grads, losses = [], []
    for rank in range(2):  # each process's backward, as DDP would run it (it sums, then divides by 2)
        m, opt = fresh()
        opt.step = lambda: None  # keep the gradients to compare them
        losses.append(train_step(NoSync(m), m, opt, x, y, rank=rank, world_size=2, accum=2))
        grads.append([p.grad for p in m.parameters()])
    whole, opt = fresh()
    whole_loss = whole(x, y)[1]
    whole_loss.backward()
    assert abs(float(sum(losses)) - float(want)) < 1e-6
    for p, g0, g1 in zip(whole.parameters(), *grads):
        assert torch.allclose((g0 + g1) / 2, p.grad, atol=1e-6)


class NoSync(torch.nn.Module):
    """A stand-in for DDP in one process: the model, with a no_sync() context that does nothing."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model(*args)

    def no_sync(self):
        import contextlib

        return contextlib.nullcontext()


def test_shares_of_an_evaluation_add_up_to_the_whole(tiny_data):
    model = create_model("transformer", build_config(overrides=TINY["transformer"]).model, tiny_data.vocab.size,
                         tiny_data.max_item_length).eval()
    with torch.inference_mode():
        whole = sum(float(n.sum()) for n in target_nlls(model, tiny_data.dev, batch_size=64))
        shares = [sum(float(n.sum()) for n in target_nlls(model, tiny_data.dev, 64, part, 3)) for part in range(3)]
        counts = [sum(len(n) for n in target_nlls(model, tiny_data.dev, 64, part, 3)) for part in range(3)]
    assert all(c > 0 for c in counts) and sum(counts) == tiny_data.dev.num_targets
    assert sum(shares) == pytest.approx(whole, rel=1e-12)
    assert split_nll(model, tiny_data.dev) == pytest.approx(whole / tiny_data.dev.num_targets, rel=1e-12)


# --- real torchrun, 2 processes on the CPU ---------------------------------------------------------------

def test_torchrun_transformer_equals_one_process_writes_once_loads_alone_and_resumes(tmp_path, tiny_file):
    ref = one_process(tmp_path / "one", settings("transformer", tiny_file, 10, 16))
    work = tmp_path / "ddp"
    first = torchrun(["-o", str(work), *flags(settings("transformer", tiny_file, 5, 16)), "--grad-accum", "2"])
    assert_same_losses(read_losses(work)["train"], ref, range(1, 6))
    # rank 0 alone speaks and writes: each line once, one TensorBoard file, no stray temporary file
    assert first.stdout.count("step 5: dev nll") == 1 and first.stdout.count("best checkpoint") == 1
    assert "2 processes (DDP, gloo)" in first.stdout and "2 micro-steps" in first.stdout
    assert len(list((work / "tb").glob("events.out.tfevents.*"))) == 1
    assert not list(work.glob(".*.tmp"))
    # the checkpoint of 2 processes is a plain one: no module. prefixes, loads and evaluates in one process
    state = checkpoint.load(work / "model.pt")
    assert not any(k.startswith("module.") for k in state["model"])
    results = json.loads((work / "results.json").read_text())
    assert load(work).evaluate()["dev"]["nll"] == pytest.approx(results["dev"]["nll"], rel=1e-9)
    # resumed under torchrun, it continues the run exactly
    torchrun(["-o", str(work), "--resume", "--max-steps", "10"])
    assert_same_losses(read_losses(work)["train"], ref, range(1, 11))
    assert json.loads((work / "results.json").read_text())["final_step"] == 10


def test_torchrun_resumes_an_mlp_checkpoint_of_one_process(tmp_path, tiny_file):
    ref = one_process(tmp_path / "one", settings("mlp", tiny_file, 10, 64))
    work = tmp_path / "run"
    one_process(work, settings("mlp", tiny_file, 5, 64))
    out = torchrun(["-o", str(work), "--resume", "--max-steps", "10"]).stdout
    assert "resuming" in out and "on 2 processes" in out
    assert_same_losses(read_losses(work)["train"], ref, range(6, 11))
    assert json.loads((work / "results.json").read_text())["dev"]["nll"] == pytest.approx(
        json.loads((tmp_path / "one" / "results.json").read_text())["dev"]["nll"], abs=TOLERANCE)


def test_a_killed_process_ends_the_run_in_one_line_and_the_last_checkpoint_loads(tmp_path, tiny_file):
    work = tmp_path / "run"
    values = {**settings("mlp", tiny_file, 1_000_000, 64), "train.log_interval": 10, "train.ddp_timeout": 30}
    run = torchrun(["-o", str(work), *flags(values)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (work / "last.pt").exists():
            assert run.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        victim = next(pid for pid in children(run.pid) if environ(pid).get("RANK") == "1")
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        _, err = run.communicate(timeout=values["train.ddp_timeout"] + 30)  # torchrun's grace period is 30 s
        assert time.monotonic() - t0 < values["train.ddp_timeout"]
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    ours = [line for line in err.splitlines() if line.startswith("makemore:")]
    assert len(ours) == 1 and "another process of this run stopped" in ours[0] and "--resume" in ours[0], err[-3000:]
    assert checkpoint.load(work / "last.pt")["step"] > 0


def children(pid: int) -> list[int]:
    """Process ids of pid's children (torchrun's workers), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return out


def environ(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@pytest.mark.slow  # a third torchrun start (several seconds): make test-all runs it
def test_count_models_are_fitted_by_rank_0_alone(tmp_path, tiny_file):
    out = torchrun(["-o", str(tmp_path / "r"), "-i", str(tiny_file), "--type", "bigram"]).stdout
    assert out.count("note: a bigram model is fitted in one counting pass: rank 0 fits it alone") == 1
    assert out.count("exact NLL over each whole split") == 1
    assert load(tmp_path / "r").evaluate()["dev"]["nll"] > 0

