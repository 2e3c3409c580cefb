"""makemore.py, Karpathy's original single file, timed beside us: its own process, its own training loop.

Its code is never part of this repository. The benchmark looks for it at $MAKEMORE_PY, else at
~/.cache/makemore-py/makemore.py; without it our figures are reported with no speed-ups at all.

makemore.py prints `step N | loss L | step time Tms` every 10 steps, where T is the wall time from
fetching the batch to the end of the optimizer step. Its evaluation (every 500 steps) and samples
(every 200) run after that window closes; the steps where they happen are dropped all the same.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT = Path("~/.cache/makemore-py/makemore.py")
HOW_TO_GET = ("makemore.py not found, so no speed-ups are reported: git clone https://github.com/karpathy/makemore "
              "~/.cache/makemore-py, or set MAKEMORE_PY to the path of its makemore.py")
# our registry name -> makemore.py's --type (its "bigram" is a logit table trained by gradient descent)
TYPES = {"nbigram": "bigram", "mlp": "mlp", "rnn": "rnn", "gru": "gru", "bow": "bow", "transformer": "transformer"}
WORDS = 32  # its default --batch-size: 32 whole words a step
EVAL_EVERY, SAMPLE_EVERY = 500, 200
STEP_LINE = re.compile(r"^step (\d+) \| loss \S+ \| step time ([0-9.]+)ms\s*$")


def find(env: dict | None = None) -> Path | None:
    """makemore.py's path: $MAKEMORE_PY when set, else ~/.cache/makemore-py/makemore.py; None when absent."""
    env = os.environ if env is None else env
    path = Path(env["MAKEMORE_PY"]) if env.get("MAKEMORE_PY") else DEFAULT
    path = path.expanduser()
    return path if path.is_file() else None


def parse_step_times(text: str) -> dict[int, float]:
    """{step: milliseconds} from makemore.py's output; every other line is ignored."""
    times = {}
    for line in text.splitlines():
        m = STEP_LINE.match(line)
        if m:
            times[int(m.group(1))] = float(m.group(2))
    return times


def steady_ms(times: dict[int, float], warmup: int) -> list[float]:
    """Step times from step `warmup` on, without the steps where it evaluates or samples."""
    return [ms for step, ms in sorted(times.items())
            if step >= warmup and step % EVAL_EVERY != 0 and step % SAMPLE_EVERY != 0]


def targets_per_word(path: str | Path) -> float:
    """Real targets a word has in makemore.py's loss: its characters and the end token (padding is -1).

    Read as makemore.py reads the file: lines stripped, empty ones dropped, duplicates kept. Its
    training split is a random 90%, so this whole-file mean is what its batches average.
    """
    words = [w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w]
    return sum(len(w) + 1 for w in words) / len(words)


def measure(script: Path, model_type: str, input: str | Path, threads: int, steps: int = 600, warmup: int = 100,
            workers: int | None = None, timeout: float = 900) -> dict:
    """Train makemore.py's model `steps` steps at its defaults; its median step time after `warmup`.

    It gets the same number of torch threads as our measurement (OMP_NUM_THREADS) and none of our
    environment's settings (MKL_CBWR, which our package sets for reproducibility, would slow it);
    `workers` sets its --num-workers (None: its default, 4 data-loader processes).
    Raises RuntimeError when it fails or prints too few step times to measure.
    """
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as work:
        cmd = [sys.executable, str(script), "--input-file", str(Path(input).resolve()), "--work-dir", work,
               "--type", TYPES[model_type], "--max-steps", str(steps)]
        cmd += [] if workers is None else ["--num-workers", str(workers)]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"makemore.py --type {TYPES[model_type]} failed (exit {proc.returncode}): {tail[0]}")
    times = steady_ms(parse_step_times(proc.stdout), warmup)
    if len(times) < 2:
        raise RuntimeError(f"makemore.py --type {TYPES[model_type]} printed {len(times)} step times after step "
                           f"{warmup}; run more steps")
    ms = statistics.median(times)
    chars = WORDS * targets_per_word(input)
    return {"type": TYPES[model_type], "threads": threads, "steps": steps, "steps_timed": len(times),
            "ms_per_step": ms, "target_chars_per_step": chars, "target_chars_per_s": chars / ms * 1e3,
            "workers": workers, "command": f"OMP_NUM_THREADS={threads} python makemore.py --input-file "
            f"{Path(input).name} --work-dir <tmp> " + " ".join(cmd[6:])}
