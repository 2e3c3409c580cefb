"""Command line: `makemore [train]`, `makemore sample`, `makemore eval`.

Also accepts the original makemore.py's flag names (-i/--input-file, -o/--work-dir, --sample-only,
...), so its users can switch without relearning. Every user error is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import warnings
from pathlib import Path

from . import __version__, checks, compare, diagnostics, lrfind, sweep
from . import distributed as D
from . import score as S
from .api import load
from .checkpoint import CheckpointError
from .config import ConfigError, parse_override
from .data import DataError, read_items
from .export import FORMATS, ExportError, export
from .mix import mix as mix_runs
from .models import MODELS, ModelConfigError
from .plots import require_matplotlib
from .runs import build_config, train_run
from .sample import SampleError
from .score import ScoreError
from .train import TrainingDiverged

USER_ERRORS = (ConfigError, DataError, CheckpointError, SampleError, ScoreError, ExportError, ModelConfigError)

# flag dest -> dotted config key; a flag left unset leaves the config (YAML or default) alone
CONFIG_FLAGS = {
    "input": "data.input", "encoding": "data.encoding", "max_length": "data.max_length",
    "split_seed": "data.seed", "work_dir": "work_dir", "type": "model.type",
    "block_size": "model.block_size", "n_embd": "model.n_embd", "n_embd2": "model.n_embd2",
    "n_layer": "model.n_layer", "n_head": "model.n_head", "dropout": "model.dropout",
    "optimizer": "train.optimizer", "learning_rate": "train.lr",
    "weight_decay": "train.weight_decay", "schedule": "train.schedule", "warmup_steps": "train.warmup_steps",
    "batch_size": "train.batch_size", "grad_accum": "train.grad_accum", "max_steps": "train.max_steps",
    "grad_clip": "train.grad_clip",
    "eval_interval": "train.eval_interval", "target_loss": "train.target_loss", "device": "train.device",
    "dtype": "train.dtype", "threads": "train.threads", "compile": "train.compile", "top_k": "sample.top_k",
    "engine": "model.engine",
}
CONFIG_FLAGS["diagnostics_interval"] = "train.diagnostics_interval"  # a flag of `train` only


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """Flags that override the experiment config; shared by every command that builds a model."""
    g = p.add_argument_group("data")
    g.add_argument("-i", "--input", "--input-file", dest="input", help="text file, one item a line "
                   "(default: the bundled US census first names)")
    g.add_argument("--encoding", help="text encoding of the input file (default utf-8)")
    g.add_argument("--max-length", type=int, help="drop items longer than this many characters")
    g.add_argument("--split-seed", type=int, help="seed of the train/dev/test shuffle only")
    g = p.add_argument_group("model")
    g.add_argument("--config", help="experiment YAML file (configs/*.yaml); flags override it")
    g.add_argument("--type", help=f"model type: {', '.join(MODELS)} (default mlp)")
    g.add_argument("--block-size", type=int, help="characters of context")
    g.add_argument("--n-embd", type=int, help="embedding size")
    g.add_argument("--n-embd2", type=int, help="hidden layer width")
    g.add_argument("--n-layer", type=int, help="layers")
    g.add_argument("--n-head", type=int, help="attention heads (transformer)")
    g.add_argument("--dropout", type=float, help="dropout probability, in [0, 1)")
    g.add_argument("--engine", help="nbigram: torch, or micrograd (the course's scalar engine: same losses, slow by "
                   "nature, use small batches)")
    g.add_argument("--manual-backward", action="store_true", help="mlp, bnmlp: every gradient from hand-derived "
                   "formulas instead of autograd (the course's backprop ninja)")
    g = p.add_argument_group("training")
    g.add_argument("-o", "--work-dir", help="run folder for checkpoints, logs and results (default out)")
    g.add_argument("--seed", type=int, help="seed of the split, initialization, batches and samples")
    g.add_argument("--optimizer", help="adamw or sgd")
    g.add_argument("-l", "--learning-rate", "--lr", dest="learning_rate", type=float, help="peak learning rate")
    g.add_argument("-w", "--weight-decay", type=float, help="weight decay")
    g.add_argument("--schedule", help="learning-rate schedule: constant, step or cosine")
    g.add_argument("--warmup-steps", type=int, help="linear warm-up steps")
    g.add_argument("-b", "--batch-size", type=int, help="examples a step")
    g.add_argument("--grad-accum", type=int, metavar="K", help="cut each step's batch into K micro-batches, "
                   "gradients summed before one update (batches larger than memory; under torchrun the batch is "
                   "first split over the processes)")
    g.add_argument("--max-steps", type=int, help="optimizer steps")
    g.add_argument("--grad-clip", type=float, help="clip the gradient norm to this (0 = off)")
    g.add_argument("--eval-interval", type=int, help="steps between dev evaluations and checkpoints")
    g.add_argument("--target-loss", type=float, help="stop as soon as the dev NLL reaches this")
    g.add_argument("--device", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    g.add_argument("--dtype", help="training precision: auto (default: bfloat16 autocast on a CUDA GPU that "
                   "supports it, else float32), float32 or bfloat16")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--top-k", type=int, help="top-k for the samples printed while training")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.betas=[0.9,0.95] (repeatable)")


def config_overrides(args: argparse.Namespace) -> dict:
    """The dotted config keys the user set on the command line."""
    out = {key: getattr(args, dest) for dest, key in CONFIG_FLAGS.items() if getattr(args, dest, None) is not None}
    if getattr(args, "seed", None) is not None:  # one seed for everything, as in makemore.py
        out["seed"] = args.seed
        out.setdefault("data.seed", args.seed)
    if getattr(args, "manual_backward", False):  # a store_true flag that sets a literal
        out["model.backward"] = "manual"
    out.update(parse_override(text) for text in getattr(args, "set", []))
    return out


def cmd_train(args: argparse.Namespace) -> int:
    overrides = config_overrides(args)
    if args.sample_only:  # makemore.py's way of saying `makemore sample`
        args.checkpoint, args.plain, args.json, args.output, args.interactive = "model.pt", False, False, None, True
        args.work_dir = args.work_dir or "out"
        for name in SAMPLE_FLAGS:
            if name != "top_k":  # the one sampling flag train shares
                setattr(args, name, None)
        return cmd_sample(args)
    cfg = build_config(args.config, overrides)
    if getattr(args, "plots", False):  # figures need diagnostics: record them unless an interval was chosen
        require_matplotlib()
        if not cfg.train.diagnostics_interval:
            overrides["train.diagnostics_interval"] = diagnostics.default_interval(cfg.train.max_steps)
            cfg = build_config(args.config, overrides)
    results = train_run(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                        overrides=overrides)
    if results.get("stopped") == "interrupted":
        return 130
    if getattr(args, "plots", False):
        for path in diagnostics.draw(cfg.work_dir):
            print(f"wrote {path}")
    for word, origin in results["samples"]:
        print(f"  {word:20s} {origin}")
    return 0


SAMPLE_FLAGS = ("num", "temperature", "top_k", "top_p", "prefix", "suffix", "contains", "regex", "min_length",
                "max_length", "novel", "unique", "tries", "seed")  # each overrides the run's saved sample section


def cmd_sample(args: argparse.Namespace) -> int:
    run = load(args.work_dir, args.checkpoint, device=args.device or "auto")
    options = {name: getattr(args, name, None) for name in SAMPLE_FLAGS}
    seed = run.sample_config(**options).seed
    interactive = getattr(args, "interactive", False) and sys.stdin.isatty()
    complete = True
    for round_ in itertools.count():  # one round, or (--sample-only on a terminal) until the user quits
        with warnings.catch_warnings():  # the API warns of a shortfall; here it is the exit code and one line
            warnings.simplefilter("ignore")
            samples = run.sample(**{**options, "seed": seed + round_})
        complete = samples.stats.complete
        print_samples(run, samples, args)
        print(samples.stats.summary(), file=sys.stderr)
        if not complete:
            print(f"makemore: {samples.stats.shortfall()}", file=sys.stderr)
        if not interactive:
            break
        try:
            if input("Enter for more, q to quit: ").strip().lower() in ("q", "quit", "exit"):
                break
        except EOFError:
            break
    return 0 if complete else 2


def print_samples(run, samples, args: argparse.Namespace) -> None:
    """Words one a line (with their origin unless --plain), or JSON with origins and NLLs; to --output or stdout."""
    if args.json:
        scores = run.score(list(samples))
        text = json.dumps({"samples": [{"word": s.word, "origin": s.origin, "nll": s.nll, "bpc": s.bpc,
                                        "logprob": s.logprob} for s in scores],
                           "stats": samples.stats.to_dict()}) + "\n"
    elif args.plain or args.output:
        text = "".join(f"{w}\n" for w in samples)
    else:
        text = "".join(f"{w:20s} {o}\n" for w, o in zip(samples, samples.origins))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write --output {args.output}: {e.strerror}; choose another file") from None
        print(f"wrote {len(samples)} words to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_eval(args: argparse.Namespace) -> int:
    results = load(args.work_dir, args.checkpoint, device=args.device or "auto").evaluate()
    if args.json:
        print(json.dumps(results))
    else:
        print("exact NLL over each whole split:")
        for name, r in results.items():
            print(f"  {name:5s} nll {r['nll']:.4f}  ({r['bpc']:.4f} bits/char)")
    return 0


def score_words_of(args: argparse.Namespace) -> list[str]:
    """The words to score, in order: the arguments, with `-` standing for standard input, then --file."""
    words = []
    for word in args.words:
        words += [w.strip() for w in sys.stdin.read().split("\n") if w.strip()] if word == "-" else [word]
    if args.file:
        words += read_items(args.file, args.encoding)
    if not words:
        raise ConfigError("no words to score: give them as arguments, with --file FILE, or as - to read standard input")
    return words


def cmd_score(args: argparse.Namespace) -> int:
    words = score_words_of(args)
    run = load(args.work_dir, args.checkpoint, device=args.device or "auto")
    skipped = S.problems(run.model, run.data, words) if args.skip_unknown else {}
    scores = run.score(words, skip_unknown=args.skip_unknown)
    if skipped:
        print(f"skipped {len(skipped)} word(s) that cannot be scored: "
              + "; ".join(f"{w!r}: {why}" for w, why in list(skipped.items())[:5]), file=sys.stderr)
    overall = S.total(scores)
    if args.json:
        print(json.dumps({"words": [s.to_dict(args.chars) for s in scores], "total": overall,
                          "skipped": list(skipped)}))
        return 0
    tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for i, line in enumerate(S.table(scores)):
        print(line)
        if args.chars and i > 0:
            print("\n".join(S.char_lines(scores[i - 1], run.vocab.size, tty)))
    if len(scores) > 1:
        print(f"all {overall['words']} words: {overall['nll']:.4f} nats/char ({overall['bpc']:.4f} bits/char) "
              f"over {overall['targets']} characters and ends")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    run = load(args.work_dir, args.checkpoint)
    for path in export(run, args.format, args.output):
        print(f"wrote {path}")
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    runs = [load(path) for path in args.runs]
    results = mix_runs(runs, args.runs, args.work_dir, overwrite=args.overwrite)
    print(f"mixture of {len(runs)} runs, weights fitted on dev, written to {args.work_dir}:")
    for path, run, w, dev in zip(args.runs, runs, results["weights"], results["parts_dev_nll"]):
        print(f"  {w:.4f}  {run.model_type:12s} dev nll {dev:.4f}  {path}")
    print("exact NLL over each whole split:")
    for name in ("train", "dev", "test"):
        print(f"  {name:5s} nll {results[name]['nll']:.4f}  ({results[name]['bpc']:.4f} bits/char)")
    return 0


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--work-dir", default="out", help="run folder holding the checkpoint (default out)")
    p.add_argument("--checkpoint", default="model.pt", choices=["model.pt", "last.pt"],
                   help="best (model.pt, default) or last (last.pt) checkpoint")
    p.add_argument("--device", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")


def cmd_sweep(args: argparse.Namespace) -> int:
    overrides = config_overrides(args)
    if args.config:
        raise ConfigError("a sweep takes its base config from the sweep file's base key: drop --config")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: the number of runs trained at once must be at least 1")
    sw = sweep.load_sweep(args.sweep_file, overrides)
    if args.only is not None:  # one run of the sweep, as a --jobs sweep runs each: no table (the sweep writes it)
        return 0 if sweep.run_sweep(sw, progress=not args.no_progress, only=args.only) else 130
    print(f"sweep {args.sweep_file}: {len(sw.runs)} runs into {sw.root}, varying {', '.join(sw.keys) or 'nothing'}")
    if args.dry_run:
        for run in sw.runs:
            print(f"  {run.cfg.work_dir}  ({sweep.run_state(run)})")
        return 0
    failed = {}
    if args.jobs > 1:
        finished, failed = sweep.run_parallel(sw, args.jobs, args.argv)
    else:
        finished = sweep.run_sweep(sw, progress=not args.no_progress)
    table, csv_path, md_path = sweep.write_tables(sw, failed)
    print(table)
    print(f"tables: {csv_path}, {md_path}")
    if not finished:
        return 130
    if failed:
        print(f"makemore: error: {len(failed)} of {len(sw.runs)} runs failed: {', '.join(failed)} "
              f"(see {sw.root / 'logs'}); rerun the sweep to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    rows = compare.compare_runs(args.runs)
    print(compare.markdown_table(rows, compare.COLUMNS))
    if args.csv:
        compare.write_csv(rows, compare.COLUMNS, args.csv)
        print(f"wrote {args.csv}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    cfg = build_config(args.config, config_overrides(args))
    result = lrfind.lr_find(cfg, args.lr_min, args.lr_max, args.steps, args.smoothing, args.divisor,
                            out_dir=cfg.work_dir, plot=not args.no_plot, progress=not args.no_progress)
    stop = f"diverged at {result.diverged_at:.2e}" if result.diverged_at else "did not diverge"
    print(f"smoothed loss lowest at lr {result.lr_at_min:.2e}; {stop} ({len(result.lrs)} steps)")
    print(f"suggested lr: {result.suggestion:.2e}  (use: --lr {result.suggestion:.2g})")
    for path in result.files:
        print(f"wrote {path}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a run folder: give the --work-dir of a trained run")
    records = diagnostics.read_diagnostics(run_dir)
    if records:
        record = records[-1] if args.step is None else min(records, key=lambda r: abs(r["step"] - args.step))
        print("\n".join(diagnostics.summary(record)))
    else:
        print(f"no diagnostics recorded in {run_dir}: train with --diagnostics-interval N (or --plots) to record "
              f"them; only the loss can be drawn")
        if not diagnostics.read_losses(run_dir):
            raise ConfigError(f"nothing to diagnose in {run_dir}: no diagnostics and no TensorBoard losses")
    if not args.no_plots:
        for path in diagnostics.draw(run_dir, args.out, args.step, args.window):
            print(f"wrote {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    overrides = config_overrides(args)
    files = list(args.configs) + ([args.config] if args.config else [])
    if args.gradients:
        return check_gradients(files, overrides)
    failed = []
    for config_file in files or [None]:
        cfg = build_config(config_file, overrides)
        model, results = checks.check_config(cfg, args.overfit_steps)
        print(f"check {config_file or 'defaults'}: {cfg.model_type}, {model.num_params():,} parameters, "
              f"vocabulary {model.vocab_size}")
        for r in results:
            print(f"  {r.status.upper():4s}  {r.name:18s}  {r.detail}")
        if any(r.status == "fail" for r in results):
            failed.append(config_file or "defaults")
    print(f"failed: {', '.join(failed)}" if failed else "every check passed")
    return 1 if failed else 0


def check_gradients(files: list[str], overrides: dict) -> int:
    """The course's comparison table for each config: every gradient by hand against autograd's."""
    failed = []
    for config_file in files or [None]:
        cfg = build_config(config_file, overrides)
        model, result, rows = checks.check_gradients_config(cfg)
        print(f"gradients {config_file or 'defaults'}: {cfg.model_type}, hand-written backward against autograd")
        width = max((len(r.name) for r in rows), default=0)
        for r in rows:
            print(f"  {r.name:{width}s} | exact: {str(r.exact):5s} | approximate: {str(r.approximate):5s} | "
                  f"maxdiff: {r.maxdiff:.1e}")
        print(f"  {result.status.upper():4s}  {result.name:18s}  {result.detail}")
        if result.status == "fail":
            failed.append(config_file or "defaults")
    print(f"failed: {', '.join(failed)}" if failed else "every check passed")
    return 1 if failed else 0


def add_harness_commands(sub) -> None:
    """The experiment harness: sweep, compare, lr-find, diagnose, check."""
    p = sub.add_parser("sweep", help="train every run of a sweep file (grid or list), then tabulate them")
    p.add_argument("sweep_file", help="sweep YAML: base, grid or runs, work_dir, overrides (configs/sweeps/)")
    add_config_flags(p)
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    p.add_argument("-j", "--jobs", type=int, default=1, help="train this many runs at once, each in its own process, "
                   "the CPU threads divided among them (default 1: one after another, in this process)")
    p.add_argument("--only", metavar="RUN", help="train only this run of the sweep (its folder name), no table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("compare", help="one table of finished runs, sorted by dev NLL")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders that hold them")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("lr-find", help="find a learning rate: loss against an exponentially rising rate")
    add_config_flags(p)
    p.add_argument("--lr-min", type=float, default=1e-5, help="lowest rate (default 1e-5)")
    p.add_argument("--lr-max", type=float, default=1.0, help="highest rate (default 1)")
    p.add_argument("--steps", type=int, default=300, help="steps from the lowest to the highest rate (default 300)")
    p.add_argument("--smoothing", type=float, default=0.95, help="moving-average factor of the loss (default 0.95)")
    p.add_argument("--divisor", type=float, default=3.0,
                   help="suggest the rate at the smoothed minimum divided by this (default 3)")
    p.add_argument("--no-plot", action="store_true", help="CSV and TensorBoard only, no PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("diagnose", help="diagnostic figures (PNG) and statistics of a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --diagnostics-interval or --plots")
    p.add_argument("--out", help="folder for the PNGs (default RUN_DIR/plots)")
    p.add_argument("--step", type=int, help="the recorded step to show the distributions of (default: the last)")
    p.add_argument("--window", type=int, help="steps averaged into each point of the loss curve")
    p.add_argument("--no-plots", action="store_true", help="print the statistics only")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("check", help="sanity checks of a config's model before a long run")
    p.add_argument("configs", nargs="*", metavar="CONFIG", help="experiment YAML files (default: --config or defaults)")
    add_config_flags(p)
    p.add_argument("--overfit-steps", type=int, default=1000, help="most steps to overfit one batch (default 1000)")
    p.add_argument("--gradients", action="store_true", help="instead: compare the hand-written backward "
                   "(model.backward: manual) with autograd, tensor by tensor")
    p.set_defaults(func=cmd_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="makemore", description="Character-level language models: "
                                     "learn how items are spelled and make more of them.")
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model (the default command)")
    add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue training from WORK_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in the work dir")
    p.add_argument("--sample-only", action="store_true", help="only sample from WORK_DIR (= makemore sample)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--diagnostics-interval", type=int, metavar="N",
                   help="record per-layer activation, gradient and update statistics every N steps")
    p.add_argument("--plots", action="store_true", help="draw the diagnostic figures (PNG) into WORK_DIR/plots "
                   "at the end; records diagnostics about 100 times unless --diagnostics-interval is set")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample words from a saved run")
    add_run_flags(p)
    # each sampling flag overrides the run's own sample section (config.yaml), which overrides the defaults
    p.add_argument("-n", "--num", type=int, help="how many words (default: the run's, else 20)")
    p.add_argument("--temperature", type=float, help="softmax temperature (default: the run's, else 1.0)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely characters")
    p.add_argument("--top-p", type=float, help="sample among the most likely characters holding this probability")
    p.add_argument("--prefix", help="every word starts with this")
    p.add_argument("--suffix", help="keep only words that end with this")
    p.add_argument("--contains", help="keep only words that contain this")
    p.add_argument("--regex", help="keep only words in which this Python regular expression is found")
    p.add_argument("--min-length", type=int, help="shortest word: the model may not end a word before it")
    p.add_argument("--max-length", type=int, help="longest word: words not ended within it are rejected "
                   "(default: cut at twice the longest training item)")
    p.add_argument("--novel", action="store_true", default=None, help="keep only words in no split of the data")
    p.add_argument("--unique", action="store_true", default=None, help="keep each word once")
    p.add_argument("--tries", type=int, help="most words to draw to find N that meet the constraints "
                   "(default 100 a word, at least 10,000); when they run out: the words found, a message, exit 2")
    p.add_argument("--seed", type=int, help="sampler seed (default: the run's, else 42)")
    p.add_argument("--plain", action="store_true", help="print the words only, without origin tags")
    p.add_argument("--json", action="store_true", help="one JSON object: each word with its origin and NLL, "
                   "and what was drawn")
    p.add_argument("--output", metavar="FILE", help="write the words (one a line, or the JSON) to FILE")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("score", help="how likely words are under a saved run: NLL, log-probability, perplexity")
    add_run_flags(p)
    p.add_argument("words", nargs="*", metavar="WORD", help="words to score; - reads them from standard input")
    p.add_argument("--file", help="also score every line of this file")
    p.add_argument("--encoding", default="utf-8", help="encoding of --file (default utf-8)")
    p.add_argument("--chars", action="store_true", help="each character's probability and surprise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--skip-unknown", action="store_true",
                   help="skip words with characters outside the vocabulary (or too long) instead of failing")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("export", help="ship a saved run: ONNX graph of its logits, or safetensors weights")
    add_run_flags(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (a graph for onnxruntime and others) or "
                   "safetensors (weights plus a JSON of config, vocabulary and split; makemore.load reads it)")
    p.add_argument("--output", metavar="FILE", help="where to write (default: RUN_DIR/model.onnx or "
                   "RUN_DIR/model.safetensors, with model.json beside it)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("mix", help="a run mixing trained runs' next-character distributions, weights fitted on dev")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or checkpoints) of one vocabulary and split")
    p.add_argument("-o", "--work-dir", required=True, help="folder for the mixture run")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in that folder")
    p.set_defaults(func=cmd_mix)

    p = sub.add_parser("eval", help="exact train/dev/test NLL of a saved run")
    add_run_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)
    add_harness_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public API
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "train")  # `makemore --type mlp` means `makemore train --type mlp`
    args = parser.parse_args(argv)
    args.argv = argv  # a sweep with --jobs gives each run's process its own command line
    speaks = D.env_rank() == 0  # under torchrun every process meets the same user error: rank 0 says it
    try:
        return args.func(args)
    except USER_ERRORS as e:
        if speaks:
            print(f"makemore: error: {e}", file=sys.stderr)
        return 2
    except D.Aborted:  # rank 0 refused the run and said why
        return 2
    except TrainingDiverged as e:
        if speaks:
            print(f"makemore: error: {e}", file=sys.stderr)
        return 1
    except D.PeerLost as e:  # said by every process still alive: each knows only that a peer is gone
        print(f"makemore: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("makemore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
