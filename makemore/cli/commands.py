"""What each subcommand does: one handler a subcommand, named as in parser.py, returning the exit code."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import warnings
from pathlib import Path

from .. import checks, compare, diagnostics, lrfind, sweep
from .. import score as S
from ..api import load
from ..config import ConfigError
from ..data import read_items
from ..evaluate import label_lines, nll_table
from ..export import export
from ..mix import mix as mix_runs
from ..output import dumps, shorten
from ..plots import require_matplotlib
from ..runs import build_config, train_run
from .parser import SAMPLE_FLAGS, config_overrides


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
        if not interactive or samples.logprobs is not None:  # the most likely words are the same every round
            break
        try:
            if input("Enter for more, q to quit: ").strip().lower() in ("q", "quit", "exit"):
                break
        except EOFError:
            break
    return 0 if complete else 2


def print_samples(run, samples, args: argparse.Namespace) -> None:
    """Words one a line (with their origin unless --plain), or JSON with origins and NLLs; to --output or stdout."""
    labels = samples.labels or [None] * len(samples)
    if args.json and samples.logprobs is not None:  # the most likely words: the search's own figures
        text = dumps({"samples": [{"word": w, "origin": o, "prob": p, "logprob": lp, "nll": n, "label": la}
                                  for w, o, p, lp, n, la in zip(samples, samples.origins, samples.probs,
                                                                samples.logprobs, samples.nlls, labels)],
                      "stats": samples.stats.to_dict()}) + "\n"
    elif args.json:
        scores = scores_by_label(run, list(samples), labels)
        text = dumps({"samples": [{"word": s.word, "origin": s.origin, "nll": s.nll, "bpc": s.bpc,
                                   "logprob": s.logprob, "label": la} for s, la in zip(scores, labels)],
                      "stats": samples.stats.to_dict()}) + "\n"
    elif args.plain or args.output:
        text = "".join(f"{w}\n" for w in samples)
    elif samples.logprobs is not None:
        text = "".join(f"{w:20s} p {p:.3e}  nll {n:.4f}  {o}{'  ' + la if la else ''}\n"
                       for w, p, n, o, la in zip(samples, samples.probs, samples.nlls, samples.origins, labels))
    else:
        text = "".join(f"{w:20s} {o:8s} {la}\n" if la else f"{w:20s} {o}\n"
                       for w, o, la in zip(samples, samples.origins, labels))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write --output {args.output}: {e.strerror}; choose another file") from None
        print(f"wrote {len(samples)} words to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def scores_by_label(run, words: list[str], labels: list) -> list:
    """Each word scored under its own label (all of them None for an unlabelled run), in the words' order."""
    out = [None] * len(words)
    for label in dict.fromkeys(labels):
        rows = [i for i, la in enumerate(labels) if la == label]
        for i, s in zip(rows, run.score([words[i] for i in rows], label=label)):
            out[i] = s
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    results = load(args.work_dir, args.checkpoint, device=args.device or "auto").evaluate()
    if args.json:
        print(dumps(results))
    else:
        print("\n".join([*nll_table(results), *label_lines(results)]))
    return 0


def score_words_of(args: argparse.Namespace) -> list[str]:
    """The words to score, in order: the arguments, with `-` standing for standard input, then --file."""
    words = []
    for word in args.words:
        words += [w.strip() for w in sys.stdin.read().split("\n") if w.strip()] if word == "-" else [word]
    if args.file:
        words += read_items(args.file, args.encoding, flag="--file")
    if not words:
        raise ConfigError("no words to score: give them as arguments, with --file FILE, or as - to read standard input")
    return words


def cmd_score(args: argparse.Namespace) -> int:
    words = score_words_of(args)
    run = load(args.work_dir, args.checkpoint, device=args.device or "auto")
    skipped = S.problems(run.model, run.data, words) if args.skip_unknown else {}
    scores = run.score(words, skip_unknown=args.skip_unknown, label=args.label)
    ranks = run.classify([s.word for s in scores]) if args.labels else None
    if skipped:
        print(f"skipped {len(skipped)} word(s) that cannot be scored: "
              + "; ".join(f"{shorten(w)}: {why}" for w, why in list(skipped.items())[:5]), file=sys.stderr)
    overall = S.total(scores)
    if args.json:
        words = [s.to_dict(args.chars) | ({"labels": r} if ranks else {}) for s, r in zip(scores, ranks or scores)]
        print(dumps({"words": words, "total": overall, "skipped": list(skipped)}))
        return 0
    tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for i, line in enumerate(S.table(scores)):
        print(line)
        if args.chars and i > 0:
            print("\n".join(S.char_lines(scores[i - 1], run.vocab.size, tty)))
        if ranks and i > 0:
            print("  labels " + ", ".join(f"{label} {p:.3f}" for label, p in list(ranks[i - 1].items())[:5]))
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
    print("\n".join(nll_table(results)))
    return 0


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


SERVE_NEEDS = ("fastapi", "uvicorn", "starlette", "pydantic")


def cmd_serve(args: argparse.Namespace) -> int:
    try:  # the serve extra, imported here so the rest of makemore runs without it
        from ..serve import serve
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in SERVE_NEEDS:
            raise
        raise ConfigError(f"makemore serve needs {e.name}, which is not installed: pip install -e '.[serve]'") from None
    return serve(args.runs, host=args.host, port=args.port)


HANDLERS = {"train": cmd_train, "sample": cmd_sample, "score": cmd_score, "export": cmd_export, "mix": cmd_mix,
            "eval": cmd_eval, "sweep": cmd_sweep, "compare": cmd_compare, "lr-find": cmd_lr_find,
            "diagnose": cmd_diagnose, "check": cmd_check, "serve": cmd_serve}  # subcommand -> handler
