"""The command line's grammar: every subcommand's flags, and how flags become config overrides.

A subcommand is one function here (its flags) plus its handler in commands.py; a sampling flag is one
line in add_sample_flags (its dest is a keyword of Run.sample, passed on as it is).
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..configfile import parse_override
from ..export import FORMATS
from ..models import MODELS

# flag dest -> dotted config key; a flag left unset leaves the config (YAML or default) alone
CONFIG_FLAGS = {
    "input": "data.input", "encoding": "data.encoding", "max_length": "data.max_length", "labeled": "data.labeled",
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
    g.add_argument("--labeled", action="store_true", default=None, help="each line is LABEL<TAB>ITEM: one model "
                   "learns every label; sample and score by --label")
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


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """Which saved run a command reads, and on which device."""
    p.add_argument("-o", "--work-dir", default="out", help="run folder holding the checkpoint (default out)")
    p.add_argument("--checkpoint", default="model.pt", choices=["model.pt", "last.pt"],
                   help="best (model.pt, default) or last (last.pt) checkpoint")
    p.add_argument("--device", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")


def add_sample_flags(p: argparse.ArgumentParser) -> tuple[str, ...]:
    """The sampling flags, each overriding the run's own sample section (config.yaml); their dests, Run.sample's
    keywords."""
    g = p.add_argument_group("sampling")
    flags = [
        g.add_argument("-n", "--num", type=int, help="how many words (default: the run's, else 20)"),
        g.add_argument("--temperature", type=float, help="softmax temperature (default: the run's, else 1.0)"),
        g.add_argument("--top-k", type=int, help="sample among the k most likely characters"),
        g.add_argument("--top-p", type=float, help="sample among the most likely characters holding this "
                       "probability"),
        g.add_argument("--prefix", help="every word starts with this"),
        g.add_argument("--suffix", help="only words that end with this"),
        g.add_argument("--contains", help="only words that contain this"),
        g.add_argument("--match", metavar="REGEX", help="only words this regular expression matches as a whole"),
        g.add_argument("--regex", help="keep only words in which this Python regular expression is found (by "
                       "rejection)"),
        g.add_argument("--constrain", choices=("mask", "reject"), help="mask (default): --match, --suffix, "
                       "--contains and --max-length are kept while drawing, so every word drawn meets them, drawn "
                       "from the model renormalized step by step (not its exact conditional distribution: words "
                       "tend to run long); reject: draw freely and reject words that miss (exact, but rare "
                       "constraints take many --tries)"),
        g.add_argument("--most-likely", action="store_true", default=None, help="the N most probable words that "
                       "meet the constraints, exactly, most likely first, with their probability and NLL (not a "
                       "draw: --temperature, --top-k, --top-p and --tries do not apply)"),
        g.add_argument("--budget", type=int, help="most prefixes the --most-likely search expands (default "
                       "100,000); when it runs out: the words found, a message, exit 2"),
        g.add_argument("--min-length", type=int, help="shortest word: the model may not end a word before it "
                       "(default 1: an empty item is not a word, so 0 is taken as 1)"),
        g.add_argument("--max-length", type=int, help="longest word: words not ended within it are rejected "
                       "(default: cut at twice the longest training item)"),
        g.add_argument("--novel", action="store_true", default=None, help="keep only words in no split of the data"),
        g.add_argument("--unique", action="store_true", default=None, help="keep each word once"),
        g.add_argument("--tries", type=int, help="most words to draw to find N that meet the constraints "
                       "(default 100 a word, at least 10,000); when they run out: the words found, a message, "
                       "exit 2"),
        g.add_argument("--seed", type=int, help="sampler seed (default: the run's, else 42)"),
        g.add_argument("--label", action="append", metavar="LABEL", help="a labelled run: words of this label; "
                       "several --label mix them, each word's label drawn by their train frequencies (default: "
                       "all, the same way)"),
    ]
    return tuple(a.dest for a in flags)


SAMPLE_FLAGS = add_sample_flags(argparse.ArgumentParser())  # the dests, for commands that sample without them


def train(sub) -> None:
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


def sample(sub) -> None:
    p = sub.add_parser("sample", help="sample words from a saved run")
    add_run_flags(p)
    add_sample_flags(p)
    p.add_argument("--plain", action="store_true", help="print the words only, without origin tags")
    p.add_argument("--json", action="store_true", help="one JSON object: each word with its origin and NLL, "
                   "and what was drawn")
    p.add_argument("--output", metavar="FILE", help="write the words (one a line, or the JSON) to FILE")


def score(sub) -> None:
    p = sub.add_parser("score", help="how likely words are under a saved run: NLL, log-probability, perplexity")
    add_run_flags(p)
    p.add_argument("words", nargs="*", metavar="WORD", help="words to score; - reads them from standard input")
    p.add_argument("--file", help="also score every line of this file")
    p.add_argument("--encoding", default="utf-8", help="encoding of --file (default utf-8)")
    p.add_argument("--chars", action="store_true", help="each character's probability and surprise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--skip-unknown", action="store_true",
                   help="skip words with characters outside the vocabulary (or too long) instead of failing")
    p.add_argument("--label", help="a labelled run: score under this label (default: every label, weighted by "
                   "their train frequencies)")
    p.add_argument("--labels", action="store_true", help="a labelled run: rank its labels for each word, "
                   "P(label | word) by Bayes with the labels' train frequencies")


def export(sub) -> None:
    p = sub.add_parser("export", help="ship a saved run: ONNX graph of its logits, or safetensors weights")
    add_run_flags(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (a graph for onnxruntime and others) or "
                   "safetensors (weights plus a JSON of config, vocabulary and split; makemore.load reads it)")
    p.add_argument("--output", metavar="FILE", help="where to write (default: RUN_DIR/model.onnx or "
                   "RUN_DIR/model.safetensors, with model.json beside it)")


def mix(sub) -> None:
    p = sub.add_parser("mix", help="a run mixing trained runs' next-character distributions, weights fitted on dev")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or checkpoints) of one vocabulary and split")
    p.add_argument("-o", "--work-dir", required=True, help="folder for the mixture run")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in that folder")


def eval_(sub) -> None:
    p = sub.add_parser("eval", help="exact train/dev/test NLL of a saved run")
    add_run_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def sweep(sub) -> None:
    p = sub.add_parser("sweep", help="train every run of a sweep file (grid or list), then tabulate them")
    p.add_argument("sweep_file", help="sweep YAML: base, grid or runs, work_dir, overrides (configs/sweeps/)")
    add_config_flags(p)
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    p.add_argument("-j", "--jobs", type=int, default=1, help="train this many runs at once, each in its own process, "
                   "the CPU threads divided among them (default 1: one after another, in this process)")
    p.add_argument("--only", metavar="RUN", help="train only this run of the sweep (its folder name), no table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def compare(sub) -> None:
    p = sub.add_parser("compare", help="one table of finished runs, sorted by dev NLL")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders that hold them")
    p.add_argument("--csv", help="also write the table to this CSV file")


def lr_find(sub) -> None:
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


def diagnose(sub) -> None:
    p = sub.add_parser("diagnose", help="diagnostic figures (PNG) and statistics of a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --diagnostics-interval or --plots")
    p.add_argument("--out", help="folder for the PNGs (default RUN_DIR/plots)")
    p.add_argument("--step", type=int, help="the recorded step to show the distributions of (default: the last)")
    p.add_argument("--window", type=int, help="steps averaged into each point of the loss curve")
    p.add_argument("--no-plots", action="store_true", help="print the statistics only")


def check(sub) -> None:
    p = sub.add_parser("check", help="sanity checks of a config's model before a long run")
    p.add_argument("configs", nargs="*", metavar="CONFIG", help="experiment YAML files (default: --config or defaults)")
    add_config_flags(p)
    p.add_argument("--overfit-steps", type=int, default=1000, help="most steps to overfit one batch (default 1000)")
    p.add_argument("--gradients", action="store_true", help="instead: compare the hand-written backward "
                   "(model.backward: manual) with autograd, tensor by tensor")


def serve(sub) -> None:
    p = sub.add_parser("serve", help="an HTTP API and a web page for sampling and scoring runs (the serve extra)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders of runs (each finished run "
                   "in it is served, named by its folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                   "another prints a warning)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")


# --help's order
SUBCOMMANDS = (train, sample, score, export, mix, eval_, sweep, compare, lr_find, diagnose, check, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="makemore", description="Character-level language models: "
                                     "learn how items are spelled and make more of them.")
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser
