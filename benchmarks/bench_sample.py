"""Sampling speed of every registered model: words/s at 10,000 words a call and at one word a call.

Word length sets sampling cost (one forward a character), and an untrained model rambles to the
length cap, so each model is first trained briefly at its shipped config (count models: fitted): a
fixed number of steps, so that the words, and so the work, are the same on every run; the mean word
length is reported beside the speed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from makemore.data import Dataset
from makemore.evaluate import split_nll
from makemore.models import MODELS, Model, create_model
from makemore.sample import generate
from makemore.train import train

from .common import Enough, StepTimer, cli_main, fmt, load_names, median, shipped_config, table, write_result

BIG = 10_000
TRAIN_STEPS = 500  # enough for every model to end its words at about the data's mean length


def trained_model(model_type: str, data: Dataset, steps: int, seconds: float = 60.0) -> Model:
    """The model at its shipped config after `steps` training steps (or `seconds`, if sooner); a count model fitted."""
    cfg = shipped_config(model_type, {"train.eval_samples": 0, "train.target_loss": None})
    cfg.train.eval_interval = cfg.train.max_steps  # no dev evaluation on the way
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length)
    with tempfile.TemporaryDirectory() as work_dir:
        try:
            timer = StepTimer(warmup=0, max_steps=steps, min_steps=1, seconds=seconds)
            train(model, data, cfg, Path(work_dir), progress=False, write=lambda message: None, observer=timer)
        except Enough:
            pass
    return model.eval()


def words_per_s(model: Model, data: Dataset, num: int, calls: int, seconds: float) -> tuple[float, float]:
    """Median words/s of generate(num) over up to `calls` calls (stopping after `seconds`), and mean word length."""
    gen = torch.Generator().manual_seed(42)
    max_length = 2 * data.max_item_length  # what `makemore sample` uses
    times, lengths = [], []
    start = time.perf_counter()
    while len(times) < calls and (len(times) < 3 or time.perf_counter() - start < seconds):
        t0 = time.perf_counter()
        words = generate(model, data.vocab, num, max_length, generator=gen)
        times.append(time.perf_counter() - t0)
        lengths += [len(w) for w in words]
    return num / median(times), sum(lengths) / len(lengths)


def measure(model_type: str, data: Dataset, quick: bool) -> dict:
    """Both sampling speeds of one briefly trained model."""
    steps = 20 if quick else TRAIN_STEPS
    model = trained_model(model_type, data, steps)
    big = 200 if quick else BIG
    big_wps, big_len = words_per_s(model, data, big, calls=3 if quick else 5, seconds=0.5 if quick else 5.0)
    one_wps, one_len = words_per_s(model, data, 1, calls=10 if quick else 2000, seconds=0.5 if quick else 3.0)
    return {"model": model_type, "params": model.num_params(), "train_steps": steps if model.trainable else 0,
            "dev_nll": split_nll(model, data.dev),
            "big_call_words": big, "big_words_per_s": big_wps, "big_seconds_per_call": big / big_wps,
            "one_words_per_s": one_wps, "mean_word_length": big_len, "one_mean_word_length": one_len}


def run(quick: bool = False, results_dir: Path | None = None, input: str | Path | None = None,
        models: list[str] | None = None, **_) -> dict:
    """Every registered model (or those named)."""
    data = load_names(input)
    rows = [measure(name, data, quick) for name in (models or MODELS)]
    result = {"input": str(input or "names.txt"), "quick": quick, "rows": rows,
              "max_length": 2 * data.max_item_length}
    big = rows[0]["big_call_words"] if rows else BIG
    result["table"] = table(
        ["model", "params", "dev NLL (brief training)", "mean word length", f"words/s, {big:,} a call",
         f"s per {big:,}-word call", "words/s, 1 a call"],
        [[r["model"], f"{r['params']:,}", fmt(r["dev_nll"], 3), fmt(r["mean_word_length"], 2),
          fmt(r["big_words_per_s"], 0), fmt(r["big_seconds_per_call"], 3), fmt(r["one_words_per_s"], 0)]
         for r in rows])
    steps = max((r["train_steps"] for r in rows), default=0)
    result["table"] += (f"\n\nTrainable models after {steps} training steps at their shipped config, count models "
                        f"fitted; words capped at {result['max_length']} characters; median of repeated calls.")
    write_result("sample", result, results_dir)
    return result


def main() -> None:
    cli_main(run, __doc__)


if __name__ == "__main__":
    main()
