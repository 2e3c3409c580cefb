"""No wrong answer without an error, no lost work, no crash on bad input, no code run from a checkpoint.

Run as a script from the repository root (PYTHONPATH=. python tests/test_reliability.py) to print the
bad-input table of RELIABILITY.md; with `resume`, its interrupted-vs-uninterrupted tables.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from makemore import checkpoint
from makemore.checkpoint import CheckpointError
from makemore.cli import main
from makemore.config import ConfigError
from makemore.data import bundled_path, load_dataset
from makemore.models import MODELS, create_model
from makemore.models.mlp import MLP
from makemore.runs import build_config
from makemore.tracking import Tracker
from makemore.train import TrainingDiverged, train

QUICK = ["--max-steps", "20", "--eval-interval", "10", "--batch-size", "16", "--n-embd2", "16",
         "--set", "train.warmup_steps=0", "--no-progress"]


class Evil:
    """Unpickling this opens (so creates) a marker file: what a crafted checkpoint would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


# ---------------------------------------------------------------- bad inputs, each one line, exit 2

def make_inputs(root: Path) -> None:
    """Every bad file the table needs, plus one good trained run, under root."""
    names = bundled_path().read_text(encoding="utf-8").split()[:300]
    (root / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.txt").write_bytes(b"\n   \n\t\r\n")
    (root / "latin1.txt").write_bytes("anna\nzoë\n".encode("latin-1"))
    (root / "nul.txt").write_bytes(b"anna\nbo\x00b\n")
    (root / "huge-line.txt").write_text("\n".join(names + ["x" * 2_000_000]) + "\n", encoding="utf-8")
    (root / "five.txt").write_text("\n".join(names[:5]) + "\n", encoding="utf-8")
    (root / "folder").mkdir()
    (root / "a-file").write_text("a regular file, not a folder\n")
    (root / "syntax.yaml").write_text("train:\n  lr: [0.1, 0.2\n  batch_size: 4\n")
    (root / "python-tag.yaml").write_text('model: !!python/object/apply:builtins.open ["pwned-by-yaml", "w"]\n')
    (root / "unknown-key.yaml").write_text("train:\n  lrate: 0.1\n")
    (root / "wrong-type.yaml").write_text("train:\n  batch_size: lots\n")
    (root / "not-utf8.yaml").write_bytes("train:\n  optimizer: adamw  # café\n".encode("latin-1"))
    (root / "empty-run").mkdir()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["-i", str(root / "names.txt"), "-o", str(root / "trained"), *QUICK]) == 0
    shutil.copytree(root / "trained", root / "diverging-run")
    good = root / "trained" / "model.pt"
    for name in ("evil-run", "truncated-run", "foreign-run", "v2-run"):
        (root / name).mkdir()
    evil = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": Evil(str(root / "pwned"))}
    torch.save(evil, root / "evil-run" / "model.pt")
    torch.save(evil, root / "evil-run" / "last.pt")
    (root / "truncated-run" / "model.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save(torch.zeros(3), root / "foreign-run" / "model.pt")
    state = torch.load(good, weights_only=True)
    torch.save({**state, "version": 2}, root / "v2-run" / "model.pt")
    make_newer_inputs(root, state)


def make_newer_inputs(root: Path, state: dict) -> None:
    """The files of the newer commands' rows: a mixture and hand-edited copies, exports, a NaN run, another split."""
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    (root / "shipped").mkdir()
    with quiet[0], quiet[1]:
        for name, extra in (("bigram", []), ("other-split", ["--split-seed", "7"])):
            assert main(["-i", str(root / "names.txt"), "-o", str(root / name), "--type", "bigram", "--no-progress",
                         *extra]) == 0
        assert main(["mix", str(root / "trained"), str(root / "bigram"), "-o", str(root / "mix")]) == 0
        assert main(["export", "-o", str(root / "trained"), "--format", "safetensors", "--output",
                     str(root / "shipped" / "model.safetensors")]) == 0
    (root / "mix" / ".lock").unlink(missing_ok=True)  # the lock mix took
    meta = json.loads((root / "mix" / "mixture.json").read_text())
    for name, changes in (("mix-negative", {"weights": [1.5, -0.5]}), ("mix-sum", {"weights": [0.3, 0.3]}),
                          ("mix-missing-part", {"parts": ["part0.pt", "part2.pt"]})):
        shutil.copytree(root / "mix", root / name)
        (root / name / "mixture.json").write_text(json.dumps({**meta, **changes}))
    shutil.copytree(root / "mix", root / "mix-cut")
    (root / "mix-cut" / "mixture.json").write_text((root / "mix" / "mixture.json").read_text()[:40])
    for name in ("shipped-no-json", "shipped-cut", "shipped-foreign"):
        shutil.copytree(root / "shipped", root / name)
    (root / "shipped-no-json" / "model.json").unlink()
    cut = root / "shipped-cut" / "model.safetensors"
    cut.write_bytes(cut.read_bytes()[:200])
    (root / "shipped-foreign" / "model.json").write_text('{"format": "someone-else", "version": 1}')
    (root / "labels-once.txt").write_text("girl\tanna\ngirl\temma\nboy\tbob\n", encoding="utf-8")
    (root / "mix-killed").mkdir()  # a mix killed after writing its first part, before mixture.json
    shutil.copy(root / "mix" / "part0.pt", root / "mix-killed" / "part0.pt")
    (root / "nan-run").mkdir()
    torch.save({**state, "model": {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}},
               root / "nan-run" / "model.pt")


# (case, arguments, what the message must say); the code is 2 unless the case is in EXIT_CODES
BAD_INPUTS = [
    ("missing input", ["-i", "nope.txt", "-o", "run"], r"nope.txt does not exist.*--input"),
    ("input is a directory", ["-i", "folder", "-o", "run"], r"folder is a directory"),
    ("empty file", ["-i", "empty.txt", "-o", "run"], r"empty.txt is empty"),
    ("only blank lines", ["-i", "blank.txt", "-o", "run"], r"blank.txt has only blank lines"),
    ("invalid UTF-8", ["-i", "latin1.txt", "-o", "run"], r"latin1.txt, line 2: not valid utf-8.*--encoding"),
    ("NUL byte", ["-i", "nul.txt", "-o", "run"], r"nul.txt, line 2: contains a NUL byte"),
    ("unknown encoding", ["-i", "latin1.txt", "--encoding", "klingon", "-o", "run"], r"unknown encoding 'klingon'"),
    ("a 2,000,000-character line", ["-i", "huge-line.txt", "-o", "run"],
     r"huge-line.txt, line 301: .*2000000 characters.*--max-length \d+"),
    ("too few items to split", ["-i", "five.txt", "-o", "run"], r"only 5 items.*at least 6"),
    ("--max-length below every item", ["-i", "names.txt", "--max-length", "1", "-o", "run"],
     r"every item is longer than --max-length 1"),
    ("YAML syntax error", ["--config", "syntax.yaml", "-o", "run"], r"syntax.yaml: invalid YAML at line 3"),
    ("YAML tag that builds a Python object", ["--config", "python-tag.yaml", "-o", "run"],
     r"refused YAML at line 1.*python/object/apply"),
    ("YAML unknown key", ["--config", "unknown-key.yaml", "-o", "run"], r"unknown key train.lrate \(valid keys"),
    ("YAML wrong type", ["--config", "wrong-type.yaml", "-o", "run"], r"train.batch_size must be int, got 'lots'"),
    ("YAML not UTF-8", ["--config", "not-utf8.yaml", "-o", "run"], r"not-utf8.yaml, line 2: not UTF-8"),
    ("missing config file", ["--config", "nope.yaml", "-o", "run"], r"config file nope.yaml not found"),
    ("--set unknown key", ["--set", "train.lrate=0.1", "-o", "run"], r"unknown key train.lrate"),
    ("--set wrong type", ["--set", "train.betas=fast", "-o", "run"], r"train.betas must be tuple"),
    ("zero size", ["--n-embd", "0", "-o", "run"], r"model.n_embd must be at least 1, got 0"),
    ("negative size", ["--batch-size", "-4", "-o", "run"], r"train.batch_size must be positive, got -4"),
    ("learning rate 0", ["--lr", "0", "-o", "run"], r"train.lr must be positive, got 0"),
    ("negative learning rate", ["--lr", "-0.1", "-o", "run"], r"train.lr must be positive, got -0.1"),
    ("learning rate nan", ["--lr", "nan", "-o", "run"], r"train.lr must be a finite number, got nan"),
    ("negative seed", ["--seed", "-1", "-o", "run"], r"seed must be between 0 and 2\*\*63 - 1"),
    ("WaveNet depth that does not fit the context", ["--type", "wavenet", "--block-size", "6", "-o", "run"],
     r"block_size 6 cannot be fused by model.n_layer 3"),
    ("unknown --type", ["--type", "transformr", "-o", "run"], r"unknown model type 'transformr' \(valid types"),
    ("--device cuda on a CPU machine", ["--device", "cuda", "-o", "run"], r"'cuda' is not available.*--device cpu"),
    ("unknown device", ["--device", "tpu9", "-o", "run"], r"unknown device 'tpu9'"),
    ("--dtype bfloat16 on a CPU machine", ["--dtype", "bfloat16", "-o", "run"],
     r"--dtype bfloat16 needs a CUDA GPU that supports it, and this run is on cpu: use --dtype auto or float32"),
    ("unknown --dtype", ["--dtype", "fp16", "-o", "run"], r"train.dtype must be 'auto' \| 'float32' \| 'bfloat16'"),
    ("work dir that cannot be written", ["-i", "names.txt", "-o", "a-file/run"],
     r"cannot write to work directory a-file/run.*--work-dir"),
    ("train into a folder holding a run", ["-i", "names.txt", "-o", "trained"],
     r"already holds a trained run.*--resume.*--overwrite"),
    ("--resume with nothing to resume", ["--resume", "-o", "empty-run"], r"nothing to resume.*without --resume"),
    ("--resume a missing folder", ["--resume", "-o", "no-such-run"], r"nothing to resume: no-such-run/last.pt"),
    ("--resume with another model", ["--resume", "-o", "trained", "--n-embd", "7"], r"keeps its model"),
    ("--resume with another optimizer", ["--resume", "-o", "trained", "--optimizer", "sgd"],
     r"keeps its optimizer \(adamw\)"),
    ("--resume with another input", ["--resume", "-o", "trained", "-i", "latin1.txt"],
     r"keeps its data and seeds \(data.input differ\)"),
    ("--resume with another seed", ["--resume", "-o", "trained", "--seed", "7"],
     r"keeps its data and seeds \(data.seed, seed differ\): drop --input, --split-seed, --seed"),
    ("--resume with another split seed", ["--resume", "-o", "trained", "--split-seed", "7"],
     r"keeps its data and seeds \(data.seed differ\)"),
    ("temperature 0", ["sample", "-o", "trained", "--temperature", "0"], r"sample.temperature must be positive"),
    ("negative temperature", ["sample", "-o", "trained", "--temperature", "-1"], r"sample.temperature must be pos"),
    ("top-k 0", ["sample", "-o", "trained", "--top-k", "0"], r"sample.top_k must be at least 1, got 0"),
    ("zero samples", ["sample", "-o", "trained", "-n", "0"], r"sample.num must be at least 1"),
    ("prefix outside the vocabulary", ["sample", "-o", "trained", "--prefix", "Zoë"],
     r"prefix 'Zoë' has characters not in the vocabulary: 'Zë'"),
    ("sample from a folder with no checkpoint", ["sample", "-o", "empty-run"], r"no checkpoint at empty-run/model.pt"),
    ("sample from a missing folder", ["sample", "-o", "no-such-run"], r"no checkpoint at no-such-run/model.pt"),
    ("eval from a folder with no checkpoint", ["eval", "-o", "empty-run"], r"no checkpoint at empty-run/model.pt"),
    ("sample on --device cuda", ["sample", "-o", "trained", "--device", "cuda"], r"'cuda' is not available"),
    ("sample a code-running checkpoint", ["sample", "-o", "evil-run"], r"evil-run/model.pt was refused"),
    ("eval a code-running checkpoint", ["eval", "-o", "evil-run"], r"evil-run/model.pt was refused"),
    ("resume a code-running checkpoint", ["--resume", "-o", "evil-run"], r"evil-run/last.pt was refused"),
    ("truncated checkpoint", ["eval", "-o", "truncated-run"], r"not a readable checkpoint \(truncated"),
    ("foreign torch file", ["eval", "-o", "foreign-run"], r"foreign-run/model.pt is not a makemore checkpoint"),
    ("another layout version", ["eval", "-o", "v2-run"], r"layout version 2, this makemore reads version 1"),
    ("loss becomes inf or nan",
     ["--resume", "-o", "diverging-run", "--lr", "1e30", "--max-steps", "40", "--no-progress"],
     r"the loss became (nan|inf) at step 2\d.*last good checkpoint is kept.*lower the learning rate"),
]
class Py:
    """A battery row that is Python, not a command line: the code runs with makemore and micrograd imported."""

    def __init__(self, code: str):
        self.code = code

    def run(self) -> BaseException | None:
        import makemore
        from makemore import micrograd

        try:
            exec(self.code, {"makemore": makemore, "micrograd": micrograd})
        except Exception as e:  # noqa: BLE001 - the row checks what was raised
            return e
        return None


LONG_WORD = "a" * 5000 + "Z" + "a" * 5000
TORCHRUN_ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
# the commands built since the first battery: score, export, mix, the API, micrograd, manual backward, torchrun,
# sample's --match and --most-likely; (case, arguments or Py code, what the message must say)
NEWER_INPUTS = [
    ("score: no words", ["score", "-o", "trained"], r"no words to score: give them as arguments"),
    ("score: a word outside the vocabulary", ["score", "-o", "trained", "Zoë"],
     r"cannot score 1 word\(s\): 'Zoë': 'Zë' not in the vocabulary.*--skip-unknown"),
    ("score: the empty word", ["score", "-o", "trained", ""], r"an empty word has no characters to score"),
    ("score: a 10,001-character word", ["score", "-o", "trained", LONG_WORD], r"'a{20}…a{20}' \(10,001 characters\)"),
    ("score: --file missing", ["score", "-o", "trained", "--file", "nope.txt"],
     r"nope.txt does not exist: check the path given to --file"),
    ("score: --file not UTF-8", ["score", "-o", "trained", "--file", "latin1.txt"], r"latin1.txt, line 2: not valid"),
    ("score: a missing run", ["score", "-o", "no-such-run", "emma"], r"no checkpoint at no-such-run/model.pt"),
    ("score: a code-running checkpoint", ["score", "-o", "evil-run", "emma"], r"evil-run/model.pt was refused"),
    ("export: a mixture", ["export", "-o", "mix", "--format", "onnx"], r"a mixture is not exported as one model"),
    ("export: --output in a missing folder", ["export", "-o", "trained", "--format", "onnx", "--output",
                                              "no-such-folder/m.onnx"],
     r"could not write ONNX file no-such-folder/m.onnx: No such file or directory; check that the folder of --output"),
    ("export: a folder with no checkpoint", ["export", "-o", "empty-run", "--format", "onnx"], r"no checkpoint at"),
    ("safetensors export without its JSON", ["sample", "-o", "shipped-no-json/model.safetensors"],
     r"shipped-no-json/model.json is missing or not JSON: a safetensors export is the pair"),
    ("safetensors export truncated", ["eval", "-o", "shipped-cut/model.safetensors"],
     r"not a readable safetensors file; export again"),
    ("safetensors JSON of another program", ["eval", "-o", "shipped-foreign/model.safetensors"],
     r"is not a makemore safetensors export"),
    ("mix: one run", ["mix", "trained", "-o", "new-mix"], r"a mixture needs at least two runs"),
    ("mix: runs of another split", ["mix", "trained", "other-split", "-o", "new-mix"],
     r"other-split has another train/dev/test split than trained"),
    ("mix: a mixture", ["mix", "mix", "trained", "-o", "new-mix"], r"mix is a mixture already"),
    ("mix: a missing run", ["mix", "trained", "no-such-run", "-o", "new-mix"], r"no checkpoint at no-such-run"),
    ("mix: a run with NaN weights", ["mix", "trained", "nan-run", "-o", "new-mix"],
     r"nan-run has dev NLL nan: its weights are broken"),
    ("mix -o a trained run's folder", ["mix", "trained", "bigram", "-o", "trained"],
     r"trained holds a trained run: pass --overwrite to replace it with this mixture"),
    ("mix -o a mixture's folder", ["mix", "trained", "bigram", "-o", "mix"], r"mix already holds a mixture"),
    ("train into a mixture's folder", ["-i", "names.txt", "-o", "mix"],
     r"mix holds a mixture \(made by makemore mix\): pass --overwrite"),
    ("mixture.json: a negative weight", ["sample", "-o", "mix-negative"],
     r"mix-negative/mixture.json: weight -0.5 of part1.pt is negative; restore the file or make the mixture again"),
    ("mixture.json: weights summing to 0.6", ["eval", "-o", "mix-sum"], r"mix-sum/mixture.json: weights sum to 0.6"),
    ("mixture.json: a missing part", ["eval", "-o", "mix-missing-part"], r"its part part2.pt does not exist"),
    ("mixture.json cut short", ["eval", "-o", "mix-cut"], r"mix-cut/mixture.json is damaged or not a makemore mix"),
    ("a mix killed before mixture.json", ["eval", "-o", "mix-killed"], r"no checkpoint at mix-killed/model.pt"),
    ("--match not a regular expression", ["sample", "-o", "trained", "--match", "(ab"],
     r"sample.match '\(ab' is not a regular expression"),
    ("--match no word can meet", ["sample", "-o", "trained", "--match", "q{9}", "--max-length", "5"],
     r"no word can meet --match 'q\{9\}' among words of at most 5 characters"),
    ("--match outside the vocabulary", ["sample", "-o", "trained", "--match", "Z+"], r"no word can meet --match 'Z\+'"),
    ("--regex nested 10,001 deep", ["sample", "-o", "trained", "--regex", "(" * 10_001],
     r"sample.regex '\({20}…\({20}' \(10,001 characters\) is not a valid regular expression"),
    ("--min-length above --max-length", ["sample", "-o", "trained", "--min-length", "6", "--max-length", "3"],
     r"sample.min_length 6 is above sample.max_length 3"),
    ("--most-likely with --budget 0", ["sample", "-o", "trained", "--most-likely", "--budget", "0"],
     r"sample.budget must be at least 1"),
    ("--most-likely finding nothing within its budget", ["sample", "-o", "trained", "--most-likely", "--budget", "1",
                                                         "--match", "[a-z]{4}"],
     r"the most-likely search found no word within 1 prefixes expanded.*raise --budget"),
    ("sample --output in a missing folder", ["sample", "-o", "trained", "--output", "no-such-folder/w.txt"],
     r"cannot write --output no-such-folder/w.txt: No such file or directory; choose another file"),
    ("API: a misspelled option", Py("makemore.train(lrate=0.1, work_dir='run')"),
     r"unknown option 'lrate' for a mlp run: did you mean lr.*see help\(makemore.train\)"),
    ("API: an unknown model type", Py("makemore.train(type='transformr', work_dir='run')"),
     r"unknown model type 'transformr'"),
    ("API: load a missing run", Py("makemore.load('no-such-run')"), r"no checkpoint at no-such-run/model.pt"),
    ("API: load an edited mixture", Py("makemore.load('mix-negative')"), r"weight -0.5 of part1.pt is negative"),
    ("API: sample at temperature 0", Py("makemore.load('trained').sample(3, temperature=0)"),
     r"sample.temperature must be positive"),
    ("API: a misspelled sample option", Py("makemore.load('trained').sample(3, temprature=0.5)"),
     r"unknown key sample.temprature"),
    ("API: score a word outside the vocabulary", Py("makemore.load('trained').score(['Zoë'])"),
     r"'Zë' not in the vocabulary"),
    ("API: score the empty word", Py("makemore.load('trained').score('')"), r"an empty word has no characters"),
    ("micrograd: an unknown activation", Py("micrograd.Neuron(2, act='sigmoid')"),
     r"unknown activation 'sigmoid' \(valid: "),
    ("micrograd: too few inputs", Py("micrograd.MLP(3, [4, 1])([1.0, 2.0])"),
     r"this layer takes 3 inputs, got 2"),
    ("micrograd: a target outside the logits", Py("micrograd.cross_entropy([micrograd.Value(1.0)] * 3, 3)"),
     r"target 3 is not one of the 3 classes \(0 to 2\)"),
    ("micrograd: log of a negative number", Py("micrograd.Value(-2.0).log()"),
     r"log of -2: the logarithm is defined for positive numbers only"),
    ("micrograd: a value that is not a number", Py("micrograd.Value('abc')"),
     r"could not convert string to float: 'abc'"),
    ("manual backward: an unknown kind", ["--type", "bnmlp", "--set", "model.backward=handmade", "-o", "run"],
     r"model.backward must be 'autograd' \| 'manual', got 'handmade'"),
    ("manual backward on a model without one", ["--type", "lstm", "--set", "model.backward=manual", "-o", "run"],
     r"unknown key model.backward \(valid keys: "),
    ("check --gradients of a missing config", ["check", "--gradients", "nope.yaml"],
     r"config file nope.yaml not found"),
    ("labels: a file without tabs", ["-i", "names.txt", "--labeled", "-o", "run"],
     r"names.txt, line 1: has no tab; with --labeled each line is LABEL<TAB>ITEM"),
    ("labels: a label with one item", ["-i", "labels-once.txt", "--labeled", "-o", "run"],
     r"labels-once.txt, line 3: label 'boy' has only this item"),
    ("labels: --label on an unlabelled run", ["sample", "-o", "trained", "--label", "girl"],
     r"this run was not trained on labelled data, so label 'girl' has no meaning"),
    ("torchrun: a rank that is not a number", ["-i", "names.txt", "-o", "run"],
     r"torchrun's RANK, LOCAL_RANK and WORLD_SIZE must be integers"),
    ("torchrun: a rank beyond the world size", ["-i", "names.txt", "-o", "run"],
     r"RANK 3, WORLD_SIZE 2 and LOCAL_RANK 0 are inconsistent"),
    ("torchrun: --device cuda:1", ["-i", "names.txt", "-o", "run", "--device", "cuda:1"],
     r"under torchrun each process takes the GPU of its LOCAL_RANK"),
    ("torchrun: --device mps", ["-i", "names.txt", "-o", "run", "--device", "mps"],
     r"torchrun training runs on cpu \(gloo\) or cuda \(nccl\)"),
    ("torchrun: a batch that does not split", ["-i", "names.txt", "-o", "run", "--batch-size", "32"],
     r"train.batch_size 32 does not split into 3 process\(es\).*30 or 33"),
    ("torchrun: the error on rank 1", ["-i", "nope.txt", "-o", "run"], r"input file nope.txt does not exist"),
]
ENVIRONMENTS = {  # rows run with torchrun's variables set, as each process of a torchrun launch sees them
    "torchrun: a rank that is not a number": {**TORCHRUN_ENV, "RANK": "abc"},
    "torchrun: a rank beyond the world size": {**TORCHRUN_ENV, "RANK": "3"},
    "torchrun: --device cuda:1": TORCHRUN_ENV,
    "torchrun: --device mps": TORCHRUN_ENV,
    "torchrun: a batch that does not split": {**TORCHRUN_ENV, "WORLD_SIZE": "3"},
    "torchrun: the error on rank 1": {**TORCHRUN_ENV, "RANK": "1", "LOCAL_RANK": "1"},
}
BAD_INPUTS += NEWER_INPUTS
EXIT_CODES = {"loss becomes inf or nan": 1}
CHECKPOINTS_ONLY = {"loss becomes inf or nan"}  # a resumed run rewrites config.yaml and logs; checkpoints stay
NEEDS_NO_CUDA = {"--device cuda on a CPU machine", "sample on --device cuda", "--dtype bfloat16 on a CPU machine"}


def snapshot(root: Path, pattern: str = "*") -> dict[str, str]:
    """Every file under root with a digest of its bytes: equal snapshots mean nothing written or lost."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob(pattern))}


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """main() in-process, returning exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def run_row(args) -> tuple[int | str, str]:
    """A battery row: a command line (its exit code and stderr), or Python code (the exception's class, and its
    message as the CLI would print it); a Python row that raises nothing, or no user error, fails."""
    if not isinstance(args, Py):
        code, _, err = run_cli(args)
        return code, err
    error = args.run()
    if not isinstance(error, ValueError):  # every makemore user error is a ValueError (ConfigError, ...)
        return "no user error", repr(error)
    return 2, f"makemore: error: {error}\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    make_inputs(root)
    return root


@pytest.mark.parametrize("case,args,pattern", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(case, args, pattern, inputs, monkeypatch):
    if case in NEEDS_NO_CUDA and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    monkeypatch.chdir(inputs)
    for name, value in ENVIRONMENTS.get(case, {}).items():
        monkeypatch.setenv(name, value)
    files = "*.pt" if case in CHECKPOINTS_ONLY else "*"
    before = snapshot(inputs, files)
    code, err = run_row(args)
    assert code == EXIT_CODES.get(case, 2), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("makemore: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err and len(lines[0]) < 400
    assert snapshot(inputs, files) == before  # nothing written, nothing lost: no run folder, no checkpoint touched
    assert not (inputs / "run").exists() and not (inputs / "pwned").exists()
    assert not (inputs / "pwned-by-yaml").exists()


def test_a_far_longer_line_warns_with_its_line_and_max_length_caps_it(tmp_path, tiny_items):
    path = tmp_path / "x.txt"
    path.write_text("\n".join(tiny_items[:100] + ["y" * 5000] + tiny_items[100:]) + "\n", encoding="utf-8")
    warnings = []
    data = load_dataset(path, warn=warnings.append)
    assert data.max_item_length == 5000  # a moderate outlier: a warning, not an error
    assert len(warnings) == 1 and "line 101" in warnings[0] and "--max-length" in warnings[0]
    capped = load_dataset(path, max_length=40, warn=warnings.append)
    assert capped.max_item_length < 40 and "dropped 1 items" in warnings[-1]


# ---------------------------------------------------------------- no stale results

def finished_elsewhere(work: Path) -> list[str]:
    """What sweep and compare would report of a run folder: its state and the rows compare finds."""
    from makemore import compare
    from makemore.sweep import SweepRun, run_state

    state = run_state(SweepRun("r", {}, build_config(overrides={"work_dir": str(work)})))
    try:
        rows = compare.compare_runs([work])
    except ConfigError:
        rows = []
    return [state, *(str(r["dev_nll"]) for r in rows)]


def test_an_overwritten_or_resumed_run_that_fails_leaves_no_stale_result(tmp_path, tiny_file):
    work = tmp_path / "run"
    code, _, err = run_cli(["-i", str(tiny_file), "-o", str(work), *QUICK, "--diagnostics-interval", "5"])
    assert code == 0, err
    assert finished_elsewhere(work)[0] == "done" and (work / "diagnostics.jsonl").exists()
    (work / "notes.txt").write_text("mine")  # not the run's: never removed
    (work / "tb" / "lr_find").mkdir()
    (work / "tb" / "lr_find" / "events.out.tfevents.1").write_text("an lr-find's curve, not the run's")
    old_events = sorted(p.name for p in (work / "tb").glob("events.out.tfevents.*"))
    # the replacing run diverges at once, before it writes a checkpoint or a result
    code, _, err = run_cli(["-i", str(tiny_file), "-o", str(work), *QUICK, "--overwrite", "--lr", "1e30"])
    assert code == 1 and "the loss became" in err
    assert finished_elsewhere(work) == ["new"]  # not finished, nothing to resume, nothing for compare
    left = {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()}
    assert not left & {"model.pt", "last.pt", "results.json", "diagnostics.jsonl"}
    assert "notes.txt" in left and "tb/lr_find/events.out.tfevents.1" in left
    assert not set(old_events) & {p.name for p in (work / "tb").glob("events.out.tfevents.*")}
    # a finished run resumed for more steps is unfinished again until it ends
    code, _, err = run_cli(["-i", str(tiny_file), "-o", str(work), *QUICK, "--overwrite"])
    assert code == 0 and finished_elsewhere(work)[0] == "done"
    code, _, err = run_cli(["--resume", "-o", str(work), "--max-steps", "40", "--lr", "1e30", "--no-progress"])
    assert code == 1 and finished_elsewhere(work) == ["partial"]


# ---------------------------------------------------------------- unicode round trip

UNICODE_ITEMS = ["zoë", "émilie", "naïve", "e\u0301cole", "ångström", "😀smile", "👩\u200d👩\u200d👧", "שלום",
                 "مرحبا", "日本語", "ñandú", "Ωmega", "ça", "đức", "🙂🙃", "אבא"]


def test_unicode_just_works_and_round_trips_through_a_checkpoint(tmp_path):
    items = [f"{w}{i}" if i else w for i in range(4) for w in UNICODE_ITEMS]  # 64 distinct items
    path = tmp_path / "unicode.txt"
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    work = tmp_path / "run"
    code, out, err = run_cli(["-i", str(path), "-o", str(work), *QUICK])
    assert code == 0, err
    state = checkpoint.load(work / "model.pt")
    assert state["vocab"] == sorted(set("".join(items)))
    assert sorted("\n".join(state["items"].values()).split("\n")) == sorted(items)
    _, data, _ = checkpoint.restore(state)
    for item in items:
        assert data.vocab.decode(data.vocab.encode(item)) == item
    for prefix in ("ש", "😀", "e\u0301", "👩\u200d"):
        code, out, err = run_cli(["sample", "-o", str(work), "-n", "5", "--prefix", prefix, "--plain"])
        assert code == 0, err
        words = out.splitlines()
        assert len(words) == 5 and all(w.startswith(prefix) for w in words)
    code, out, _ = run_cli(["eval", "-o", str(work), "--json"])
    assert code == 0 and '"test"' in out


# ---------------------------------------------------------------- crash-safe checkpoints

def small_state(value: float) -> dict:
    return {"weights": torch.full((1000,), value)}


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(path, small_state(1.0))
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device; the previous checkpoint is unchanged"):
        checkpoint.save(path, small_state(2.0))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pt"]  # the temporary file is gone


def test_a_full_disk_during_training_is_one_line_and_loses_nothing(inputs, tmp_path, monkeypatch):
    work = tmp_path / "trained"
    shutil.copytree(inputs / "trained", work)
    before = snapshot(work)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    code, _, err = run_cli(["--resume", "-o", str(work), "--max-steps", "40", "--no-progress"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err
    after = snapshot(work)
    assert {k: v for k, v in after.items() if k.endswith(".pt")} == {k: v for k, v in before.items()
                                                                       if k.endswith(".pt")}
    assert not list(work.glob(".*.tmp"))


def test_an_interrupt_mid_write_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(path, small_state(1.0))
    before = path.read_bytes()

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, small_state(2.0))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_save_leaves_the_temp_file_of_another_process_alone(tmp_path):
    in_flight = tmp_path / f".last.pt.{os.getppid()}.tmp"  # a live process's checkpoint, half written
    in_flight.write_bytes(b"half")
    checkpoint.save(tmp_path / "last.pt", small_state(1.0))
    assert in_flight.read_bytes() == b"half"
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["weights"], torch.ones(1000))


def test_taking_the_run_lock_clears_temp_files_of_dead_processes_only(tmp_path):
    from makemore.runs import RunLock

    dead, live = tmp_path / f".last.pt.{dead_pid()}.tmp", tmp_path / f".model.pt.{os.getppid()}.tmp"
    dead.write_bytes(b"torn")
    live.write_bytes(b"in flight")
    with RunLock(tmp_path):
        assert not dead.exists() and live.exists()
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_a_run_folder_is_refused_and_a_dead_ones_lock_taken_over(inputs, tmp_path):
    work = tmp_path / "trained"
    shutil.copytree(inputs / "trained", work)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(work / ".lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(work)
        for args in (["--resume", "-o", str(work), "--max-steps", "30"],
                     ["-i", str(inputs / "names.txt"), "-o", str(work), "--overwrite", *QUICK]):
            code, _, err = run_cli([*args, "--no-progress"])
            assert code == 2 and err.strip().count("\n") == 0, err
            assert f"is being trained by another process (id {holder.pid})" in err and "--work-dir" in err
            assert snapshot(work) == before  # the second process deleted and wrote nothing
    finally:
        holder.kill()
        holder.wait()
    code, out, err = run_cli(["--resume", "-o", str(work), "--max-steps", "30", "--no-progress"])  # a dead holder
    assert code == 0 and "at step 20" in out, err
    assert checkpoint.load(work / "last.pt")["step"] == 30


class Recorder(Tracker):
    """A tracker that keeps every scalar in memory: per-step losses when log_interval is 1."""

    def __init__(self):
        super().__init__(None)
        self.scalars: dict[tuple[str, int], float] = {}

    def scalar(self, tag, value, step):
        self.scalars[tag, step] = value


def fresh_run(tmp_path, tiny_file, name: str, model_type: str = "mlp", **overrides):
    """A config, model and data for a short run that logs every step and evaluates every 10."""
    cfg = build_config(overrides={
        "work_dir": str(tmp_path / name), "model.type": model_type, "data.input": str(tiny_file),
        "train.max_steps": 40, "train.eval_interval": 10, "train.log_interval": 1, "train.batch_size": 32,
        "train.eval_samples": 3, "train.warmup_steps": 5, "model.n_embd2": 32, **overrides})
    data = load_dataset(tiny_file, warn=lambda m: None)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model_type, cfg.model, data.vocab.size, data.max_item_length)
    Path(cfg.work_dir).mkdir(parents=True)
    return cfg, data, model, Path(cfg.work_dir)


def test_the_best_checkpoint_is_never_overwritten_by_a_worse_one(tmp_path, tiny_file):
    over = {"train.lr": 0.05, "train.schedule": "constant", "model.n_embd2": 256, "train.max_steps": 80}
    cfg, data, model, work = fresh_run(tmp_path, tiny_file, "a", **over)
    rec = Recorder()
    train(model, data, cfg, work, tracker=rec, progress=False, write=lambda m: None)
    devs = {step: v for (tag, step), v in rec.scalars.items() if tag == "loss/dev"}
    best_step = min(devs, key=devs.get)
    assert any(v > devs[best_step] for s, v in devs.items() if s > best_step)  # this run does get worse
    best, last = checkpoint.load(work / "model.pt"), checkpoint.load(work / "last.pt")
    assert best["step"] == best_step and best["best_dev_loss"] == devs[best_step]
    assert last["step"] == 80 and not torch.equal(best["model"]["head.weight"], last["model"]["head.weight"])
    # resumed, the run still compares against the best so far, not against its own first evaluation
    state = checkpoint.load(work / "last.pt")
    cfg2, data2, model2 = checkpoint.restore(state)
    cfg2.train.max_steps = 120
    train(model2, data2, cfg2, work, state, tracker=rec, progress=False, write=lambda m: None)
    devs = {step: v for (tag, step), v in rec.scalars.items() if tag == "loss/dev"}
    assert len(devs) == 12
    best = checkpoint.load(work / "model.pt")
    assert best["best_dev_loss"] == min(devs.values()) and best["step"] == min(devs, key=devs.get)


# ---------------------------------------------------------------- interrupts and exact resume

class DropoutMLP(MLP):
    """The MLP with dropout, so training draws from torch's global RNG: resume must restore it too."""

    def forward(self, idx, targets=None):
        h = torch.tanh(self.hidden(F.dropout(self.wte(idx), 0.2, self.training).flatten(1)))
        logits = self.head(h)
        return logits, self.loss(logits, targets)


class Signaller:
    """An observer that sends this process signals before the forward pass of chosen steps."""

    def __init__(self, at: dict[int, list[signal.Signals]]):
        self.at = at

    def wants(self, step):
        for sig in self.at.get(step, []):
            os.kill(os.getpid(), sig)
        return False


def trajectory(tmp_path, tiny_file, name, model_type, stop_before=None, sig=signal.SIGINT, **overrides):
    """Per-step scalars and final weights of a run, interrupted before step stop_before and resumed."""
    cfg, data, model, work = fresh_run(tmp_path, tiny_file, name, model_type, **overrides)
    rec, messages = Recorder(), []
    observer = Signaller({stop_before: [sig]}) if stop_before is not None else None
    result = train(model, data, cfg, work, tracker=rec, progress=False, write=messages.append, observer=observer)
    if stop_before is not None:
        assert result.stopped == "interrupted" and result.step == stop_before + 1
        assert any(f"{sig.name} at step {stop_before + 1}: saved" in m
                   and f"continue with: makemore --work-dir {work} --resume" in m for m in messages)
        state = checkpoint.load(work / "last.pt")
        assert state["step"] == stop_before + 1
        cfg, data, model = checkpoint.restore(state)
        result = train(model, data, cfg, work, state, tracker=rec, progress=False, write=messages.append)
    assert result.stopped == "finished" and result.step == 40
    return rec.scalars, model.state_dict(), checkpoint.load(work / "model.pt")


@pytest.mark.parametrize("model_type,stop_before,sig", [
    ("dropmlp", 16, signal.SIGINT),  # mid-way between evaluations
    ("dropmlp", 19, signal.SIGTERM),  # stops at step 20, an evaluation step
    ("wavenet", 26, signal.SIGINT),  # batch norm: running statistics are part of the state
])
def test_interrupted_and_resumed_equals_uninterrupted(model_type, stop_before, sig, tmp_path, tiny_file, monkeypatch):
    monkeypatch.setitem(MODELS, "dropmlp", DropoutMLP)
    over = {"model.n_embd2": 16} if model_type == "wavenet" else {}
    whole, w_whole, best_whole = trajectory(tmp_path, tiny_file, "whole", model_type, **over)
    split, w_split, best_split = trajectory(tmp_path, tiny_file, "split", model_type, stop_before, sig, **over)
    losses = [tag for tag, _ in whole if tag == "loss/train_minibatch_mean"]
    assert len(losses) == 40
    assert split == whole  # every step's loss and learning rate, every dev loss: bit for bit
    assert all(torch.equal(w_whole[k], w_split[k]) for k in w_whole)
    assert best_split["step"] == best_whole["step"] and best_split["best_dev_loss"] == best_whole["best_dev_loss"]


@pytest.mark.parametrize("backend", ["eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_runs_resume_exactly_too(backend, tmp_path, tiny_file, monkeypatch):
    """The compile probe runs one batch: it must not shift the batch order or the RNG on a resume.

    The eager backend is torch.compile's real graph capture without code generation (seconds); inductor
    generates and compiles C++ (a minute), and draws dropout from its own generator, so only it may differ
    from an uncompiled run.
    """
    monkeypatch.setitem(MODELS, "dropmlp", DropoutMLP)
    real_compile = torch.compile
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or real_compile(model, backend=backend))
    T = importlib.import_module("makemore.train")  # the module: the package's `train` attribute is the API function

    probe = T.compile_model  # a compiler failure must fail the test, not fall back to eager with a warning
    monkeypatch.setattr(T, "compile_model", lambda model, example, write=None: probe(model, example, pytest.fail))
    whole, w_whole, _ = trajectory(tmp_path, tiny_file, "whole", "dropmlp", **{"train.compile": True})
    split, w_split, _ = trajectory(tmp_path, tiny_file, "split", "dropmlp", 16, **{"train.compile": True})
    assert len(compiled) == 3  # the uninterrupted run, and both processes of the interrupted one
    assert split == whole
    assert all(torch.equal(w_whole[k], w_split[k]) for k in w_whole)
    if backend == "eager":
        plain, _, _ = trajectory(tmp_path, tiny_file, "plain", "dropmlp")
        assert whole == plain


def test_a_second_signal_exits_at_once_and_keeps_the_last_checkpoint(tmp_path, tiny_file, monkeypatch):
    cfg, data, model, work = fresh_run(tmp_path, tiny_file, "r")
    saved, real_save = [], torch.save

    def save_then_signal(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        saved.append(obj["step"])
        if obj["step"] == 17:  # the save the first signal asked for: a second Ctrl-C lands mid-write
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(torch, "save", save_then_signal)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(model, data, cfg, work, tracker=Recorder(), progress=False, write=lambda m: None,
              observer=Signaller({16: [signal.SIGINT]}))
    assert saved[-1] == 17
    assert checkpoint.load(work / "last.pt")["step"] == 10  # the write it cut short never replaced the file
    assert sorted(os.listdir(work)) == ["last.pt", "model.pt"]
    assert signal.getsignal(signal.SIGINT) is handler  # the loop's handlers are gone again


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_the_cli_saves_on_ctrl_c_and_says_how_to_resume(tmp_path, tiny_file):
    """End to end in a real process (SIGTERM takes the same path; it is checked in-process above)."""
    sig = signal.SIGINT
    work = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "-i", str(tiny_file), "-o", str(work),
                             "--max-steps", "1000000", "--eval-interval", "20", "--batch-size", "16",
                             "--n-embd2", "16", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(work / "last.pt", proc)  # training is under way, so its signal handlers are in place
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert re.search(rf"{sig.name} at step \d+: saved .*last.pt; continue with: makemore --work-dir {work} --resume",
                     out), out
    assert "Traceback" not in err
    step = checkpoint.load(work / "last.pt")["step"]
    assert step > 0
    code, out, err = run_cli(["--resume", "-o", str(work), "--max-steps", str(step + 5), "--no-progress"])
    assert code == 0, err
    assert f"at step {step}" in out and checkpoint.load(work / "last.pt")["step"] == step + 5


# ---------------------------------------------------------------- divergence guard

class Poison:
    """An observer that turns a weight into NaN after the optimizer step of one step."""

    def __init__(self, model, step: int):
        self.model, self.step = model, step

    def wants(self, step):
        return step == self.step

    def before_step(self, step, lr):
        pass

    def after_step(self, step, lr):
        with torch.no_grad():
            self.model.head.weight[0, 0] = float("nan")


@pytest.mark.parametrize("poisoned_at,expected", [(23, r"the loss became nan at step 25"),
                                                  (29, r"the dev loss became nan at step 30")])
def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(poisoned_at, expected, tmp_path, tiny_file):
    """A NaN loss, or weights that went bad on the very step before an evaluation (finite loss, NaN dev)."""
    cfg, data, model, work = fresh_run(tmp_path, tiny_file, "r", **{"train.log_interval": 5})
    with pytest.raises(TrainingDiverged, match=rf"{expected}.*lower the learning rate"):
        train(model, data, cfg, work, tracker=Recorder(), progress=False, write=lambda m: None,
              observer=Poison(model, poisoned_at))
    for name in ("model.pt", "last.pt"):
        state = checkpoint.load(work / name)
        assert state["step"] <= 20 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert checkpoint.load(work / "last.pt")["step"] == 20


# ---------------------------------------------------------------- damaged checkpoints

@pytest.mark.parametrize("change,pattern", [
    (lambda s: {**s, "vocab": "abc"}, r"damaged or from another makemore version \(vocab is a str"),
    (lambda s: {k: v for k, v in s.items() if k != "items"}, r"damaged .*\(no items\)"),
    (lambda s: {**s, "items": {"train": ["zz"], "dev": [], "test": []}}, r"damaged .*\(items lacks a train"),
    (lambda s: {**s, "items": {"train": "zz", "dev": "a", "test": "a"}, "vocab": ["a"]}, r"characters its voca"),
    (lambda s: {**s, "model": {"head.weight": torch.zeros(2)}}, r"weights do not match a mlp model"),
    (lambda s: {**s, "config": {"model": {"type": "gpt9"}}}, r"config does not fit.*unknown model type 'gpt9'"),
    (lambda s: {**s, "rng": {}}, r"cannot resume: the checkpoint's training state does not fit"),
    (lambda s: {**s, "seconds": [1.0]}, r"damaged .*\(seconds is not a mapping of times\)"),
])
def test_a_damaged_checkpoint_is_a_clear_error(change, pattern, inputs, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(inputs / "trained", work)
    state = torch.load(work / "last.pt", weights_only=True)
    torch.save(change(state), work / "last.pt")
    code, _, err = run_cli(["--resume", "-o", str(work), "--max-steps", "40", "--no-progress"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(pattern, err), err


# ---------------------------------------------------------------- no wrong answer without an error

def test_no_empty_word_is_sampled_searched_or_scored(inputs):
    """An empty item is not a word: never drawn (even when the model ends words at once), found or scored."""
    from makemore.api import load

    run = load(inputs / "trained")
    words = run.sample(2000, seed=0)
    assert len(words) == 2000 and "" not in words
    assert "" not in run.sample(300, min_length=0, seed=1)  # 0 is taken as 1
    assert "" not in run.sample(20, most_likely=True)
    code, out, err = run_cli(["sample", "-o", str(inputs / "trained"), "-n", "300", "--novel", "--unique", "--plain"])
    assert code == 0 and "" not in out.splitlines(), err
    code, _, err = run_cli(["score", "-o", str(inputs / "trained"), ""])
    assert code == 2 and err.startswith("makemore: error: an empty word has no characters to score"), err
    assert err.count("\n") == 1


def strict_json(text: str):
    """Parse as a strict parser does: NaN, Infinity and -Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def nan_run(inputs: Path, root: Path) -> Path:
    """A copy of the trained run whose weights are all NaN: every figure it gives is NaN."""
    work = root / "nan-run"
    shutil.copytree(inputs / "trained", work)
    state = torch.load(work / "model.pt", weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, work / "model.pt")
    return work


def test_every_json_output_is_strict_json_with_null_for_nan(inputs, tmp_path):
    bad = nan_run(inputs, tmp_path)
    good = inputs / "trained"
    commands = [["eval", "-o", str(bad), "--json"],
                ["sample", "-o", str(bad), "-n", "3", "--json"],
                ["score", "-o", str(bad), "emma", "--chars", "--json"],
                ["score", "-o", str(good), "Zoë", "--skip-unknown", "--json"],  # every word skipped: no mean
                ["sample", "-o", str(good), "-n", "3", "--most-likely", "--json"]]
    for args in commands:
        code, out, err = run_cli(args)
        assert code == 0, (args, err)
        strict_json(out)  # raises on NaN
    code, out, _ = run_cli(["eval", "-o", str(bad), "--json"])
    assert strict_json(out)["dev"]["nll"] is None
    code, out, _ = run_cli(["score", "-o", str(good), "Zoë", "--skip-unknown", "--json"])
    assert strict_json(out)["total"]["nll"] is None and strict_json(out)["skipped"] == ["Zoë"]


def test_the_json_helper_writes_null_for_nan_and_diagnostics_read_it_back():
    from makemore.output import dumps, nan_for_null

    text = dumps({"a": float("nan"), "b": [float("inf"), 1.5, (float("-inf"), 2)], "c": "NaN"})
    assert text == '{"a": null, "b": [null, 1.5, [null, 2]], "c": "NaN"}' and strict_json(text)
    back = nan_for_null(json.loads(text))
    assert back["b"][1] == 1.5 and all(v != v for v in (back["a"], back["b"][0]))


@pytest.fixture(scope="module")
def mixture(inputs, tmp_path_factory) -> Path:
    """A mixture of the trained MLP and a bigram of the same file and split, made by makemore mix."""
    root = tmp_path_factory.mktemp("mixture")
    code, _, err = run_cli(["-i", str(inputs / "names.txt"), "-o", str(root / "bigram"), "--type", "bigram",
                            "--no-progress"])
    assert code == 0, err
    code, _, err = run_cli(["mix", str(inputs / "trained"), str(root / "bigram"), "-o", str(root / "mix")])
    assert code == 0, err
    return root / "mix"


def edited(mixture: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the mixture folder with mixture.json's fields changed as a hand edit would."""
    work = tmp_path / "edited"
    shutil.copytree(mixture, work)
    meta = json.loads((work / "mixture.json").read_text())
    (work / "mixture.json").write_text(json.dumps({**meta, **changes}))  # json.dumps writes NaN as a bare NaN
    return work


@pytest.mark.parametrize("changes,pattern", [
    ({"weights": [1.5, -0.5]}, r"weight -0.5 of part1.pt is negative"),
    ({"weights": [float("nan"), 1.0]}, r"weight nan of part0.pt is not a finite number"),
    ({"weights": [0.3, 0.3]}, r"weights sum to 0.6, not 1"),
    ({"weights": [0.5, 0.25, 0.25]}, r"3 weights for 2 parts"),
    ({"weights": ["half", 0.5]}, r"weight 'half' of part0.pt is not a finite number"),
    ({"parts": ["part0.pt", "part9.pt"]}, r"part9.pt does not exist"),
    ({"parts": ["part0.pt", "../trained/model.pt"]}, r"'../trained/model.pt' is not a file of the mixture's folder"),
])
def test_an_edited_mixture_is_refused_at_load_naming_the_file(changes, pattern, mixture, tmp_path):
    from makemore.api import load

    work = edited(mixture, tmp_path, **changes)
    for args in (["eval", "-o", str(work)], ["sample", "-o", str(work), "-n", "3"]):
        code, out, err = run_cli(args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert re.search(rf"{work / 'mixture.json'}: .*{pattern}.*makemore mix", err), err
    with pytest.raises(ConfigError, match=pattern):
        load(work)


def test_a_run_with_nan_weights_is_not_mixed(inputs, tmp_path):
    bad = nan_run(inputs, tmp_path)
    code, _, err = run_cli(["mix", str(inputs / "trained"), str(bad), "-o", str(tmp_path / "mix")])
    assert code == 2 and "has dev NLL nan: its weights are broken" in err and not (tmp_path / "mix").exists(), err


def test_a_mixture_whose_part_is_damaged_is_refused_naming_the_mixture(mixture, tmp_path):
    work = edited(mixture, tmp_path)
    (work / "part1.pt").write_bytes((work / "part1.pt").read_bytes()[:100])
    code, _, err = run_cli(["eval", "-o", str(work)])
    assert code == 2 and err.count("\n") == 1 and "mixture.json: part part1.pt cannot be loaded" in err, err


def test_a_folder_holds_one_kind_of_run_and_overwrite_removes_the_other_kinds_files(inputs, mixture, tmp_path):
    from makemore.api import load

    folder = tmp_path / "mix"
    shutil.copytree(mixture, folder)
    (folder / "notes.txt").write_text("mine")  # not a run's: never removed
    before = snapshot(folder)
    train_args = ["-i", str(inputs / "names.txt"), "-o", str(folder), *QUICK]
    code, _, err = run_cli(train_args)
    assert code == 2 and err.count("\n") == 1 and "holds a mixture (made by makemore mix)" in err, err
    assert "--overwrite" in err and snapshot(folder) == before
    code, _, err = run_cli([*train_args, "--overwrite"])
    assert code == 0, err
    assert not list(folder.glob("part*.pt")) and not (folder / "mixture.json").exists()
    assert (folder / "notes.txt").exists() and load(folder).model_type == "mlp"
    # and the other way: a mixture written into a trained run's folder
    (folder / "part7.pt").write_bytes(b"a part of an older mixture")
    parts = [str(inputs / "trained"), str(mixture.parent / "bigram")]
    before = snapshot(folder)
    code, _, err = run_cli(["mix", *parts, "-o", str(folder)])
    assert code == 2 and err.count("\n") == 1 and "holds a trained run" in err and "--overwrite" in err, err
    assert snapshot(folder) == before
    code, _, err = run_cli(["mix", *parts, "-o", str(folder), "--overwrite"])
    assert code == 0, err
    left = {p.name for p in folder.iterdir()} - {".lock"}
    assert left == {"mixture.json", "part0.pt", "part1.pt", "results.json", "notes.txt"}, left
    assert load(folder).model_type.startswith("mixture of mlp")


LATE_RANK_0 = """
import os, sys, time
delay = float(sys.argv.pop(1))
if os.environ.get("RANK") == "0":
    time.sleep(delay)  # rank 0 starts late: the other rank meets the error first
from makemore.cli import main
sys.exit(main())
"""


def test_every_rank_says_the_user_error_it_meets(tmp_path, monkeypatch):
    """In-process, as rank 1 of 2 under torchrun: the error is said, not left to rank 0."""
    for name, value in (("RANK", "1"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(["-i", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "run")])
    assert code == 2 and err.startswith("makemore: error: input file") and err.count("\n") == 1, err


@pytest.mark.slow  # a real torchrun start on 2 busy cores: 10-25 s
def test_under_torchrun_the_error_is_said_even_when_rank_0_is_torn_down_first(tmp_path):
    """torchrun kills the other ranks when one exits: rank 0 sleeping, only rank 1 can say the error."""
    script = tmp_path / "late_rank_0.py"
    script.write_text(LATE_RANK_0)
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), "30", "-i", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "run")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    ours = [line for line in proc.stderr.splitlines() if line.startswith("makemore:")]
    assert proc.returncode != 0 and ours, proc.stderr[-3000:]
    assert all(re.fullmatch(r"makemore: error: input file .*nope.txt does not exist: check the path given to "
                            r"--input", line) for line in ours), ours
    assert not (tmp_path / "run").exists()


LONG = "a" * 5000 + "Z" + "a" * 5000  # a 10,001-character input, one character outside the vocabulary

# (what, arguments): each quotes the long input in its one-line error
LONG_INPUTS = [
    ("score a long word", ["score", "-o", "trained", LONG]),
    ("score a long word, skipped", ["score", "-o", "trained", LONG, "emma", "--skip-unknown"]),
    ("sample --prefix", ["sample", "-o", "trained", "--prefix", LONG]),
    ("sample --contains", ["sample", "-o", "trained", "--contains", LONG]),
    ("sample --match", ["sample", "-o", "trained", "--match", "(" * 10_001]),
    ("sample --regex", ["sample", "-o", "trained", "--regex", "(" * 10_001]),
    ("--set a long value", ["-o", "run", "--set", f"train.optimizer={LONG}"]),
    ("--set a long key", ["-o", "run", "--set", f"train.{LONG}=1"]),
    ("--set without =", ["-o", "run", "--set", LONG]),
    ("--type", ["-o", "run", "--type", LONG]),
    ("--device", ["-o", "run", "--device", LONG]),
    ("--encoding", ["-i", "names.txt", "-o", "run", "--encoding", LONG]),
]


@pytest.mark.parametrize("case,args", LONG_INPUTS, ids=[c[0] for c in LONG_INPUTS])
def test_a_long_input_is_quoted_shortened(case, args, inputs, monkeypatch):
    monkeypatch.chdir(inputs)
    code, _, err = run_cli(args)
    lines = err.strip().splitlines()
    message = next(line for line in lines if line.startswith("makemore: error: ") or "skipped" in line)
    assert code in (0, 2) and len(message) < 400, (len(message), message[:600])
    assert "(10,001 characters)" in message or "characters)" in message, message


def test_a_misspelled_api_option_names_the_closest_and_not_every_option(tmp_path):
    import makemore

    with pytest.raises(ConfigError) as e:
        makemore.train(lrate=0.1, work_dir=str(tmp_path / "r"))
    message = str(e.value)
    assert len(message) < 200 and "did you mean lr" in message and "help(makemore.train)" in message, message
    with pytest.raises(ConfigError) as e:
        makemore.train(**{LONG: 1}, work_dir=str(tmp_path / "r"))
    assert len(str(e.value)) < 250 and "(10,001 characters)" in str(e.value), str(e.value)[:600]


def test_exports_write_error_names_output_and_claims_no_previous_file(inputs, tmp_path):
    target = tmp_path / "no-such-folder" / "model.onnx"
    for fmt in ("onnx", "safetensors"):
        code, _, err = run_cli(["export", "-o", str(inputs / "trained"), "--format", fmt, "--output", str(target)])
        assert code == 2 and err.count("\n") == 1, err
        assert str(target) in err and "--output" in err and "unchanged" not in err, err
    target = tmp_path / "model.onnx"
    target.write_bytes(b"an earlier export")
    os.chmod(tmp_path, 0o500)  # the folder cannot be written: the file there stays as it was
    try:
        code, _, err = run_cli(["export", "-o", str(inputs / "trained"), "--format", "onnx", "--output", str(target)])
    finally:
        os.chmod(tmp_path, 0o700)
    if os.geteuid() != 0:  # root writes anyway
        assert code == 2 and "the previous ONNX file is unchanged" in err, err
    assert target.read_bytes() == b"an earlier export" or os.geteuid() == 0


def print_table() -> None:
    """The RELIABILITY.md table: every bad input, its exit code and the message it got."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_inputs(root)
        os.chdir(root)
        print("| # | bad input | command | exit | message (stderr, one line) | nothing written |")
        print("|---|---|---|---|---|---|")
        for number, (case, args, _) in enumerate(BAD_INPUTS, 1):
            files = "*.pt" if case in CHECKPOINTS_ONLY else "*"
            env = ENVIRONMENTS.get(case, {})
            saved = {name: os.environ.get(name) for name in env}
            os.environ.update(env)
            before = snapshot(root, files)
            try:
                code, err = run_row(args)
            finally:
                for name, value in saved.items():
                    os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
            same = snapshot(root, files) == before and not (root / "run").exists() and not (root / "pwned").exists()
            verdict = ("checkpoints unchanged" if case in CHECKPOINTS_ONLY else "yes") if same else "NO"
            print(f"| {number} | {case} | `{shown_command(args, env)}` | {shown_exit(args, code)} | "
                  f"{err.strip().replace('|', chr(92) + '|').replace('makemore: error: ', '')} | {verdict} |")


def shown_command(args, env: dict) -> str:
    """A row's command as the table shows it: torchrun's variables first, long arguments shortened."""
    if isinstance(args, Py):
        return f"python: {args.code}"
    shown = [f"{a[:12]}…{a[-12:]} ({len(a):,} characters)" if len(a) > 40
             else a if re.fullmatch(r"[\w./=:+-]+", a) else repr(a) for a in args]
    return " ".join([*(f"{k}={v}" for k, v in env.items()), "makemore", *shown])


def shown_exit(args, code) -> str:
    """The exit code of a command, or for a Python row what it raised."""
    return "raises" if isinstance(args, Py) else str(code)


def tensorboard_scalars(work: Path) -> dict[tuple[str, int], float]:
    """Every scalar a run logged, over all its event files (a resumed run adds one)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = {}
    for events in sorted((work / "tb").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
                    out[value.tag, event.step] = float(value.tensor.float_val[0])
    return out


def print_resume_table(model_type: str, steps: int = 300) -> None:
    """RELIABILITY.md: the same CLI run uninterrupted, and Ctrl-C'd then resumed; losses step by step."""
    common = ["--type", model_type, "--max-steps", str(steps), "--eval-interval", "50", "--batch-size", "64",
              "--n-embd2", "64", "--set", "train.log_interval=1", "--no-progress"]
    with tempfile.TemporaryDirectory() as tmp:
        whole, split = Path(tmp) / "whole", Path(tmp) / "split"
        subprocess.run([sys.executable, "-m", "makemore", "-o", str(whole), *common], check=True, capture_output=True)
        proc = subprocess.Popen([sys.executable, "-m", "makemore", "-o", str(split), *common],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(split / "last.pt", proc)
        time.sleep(0.05)  # Ctrl-C somewhere between two evaluations
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate()
        stopped = checkpoint.load(split / "last.pt")["step"]
        resumed = subprocess.run([sys.executable, "-m", "makemore", "-o", str(split), "--resume", "--no-progress"],
                                 capture_output=True, text=True)
        a, b = tensorboard_scalars(whole), tensorboard_scalars(split)
        losses = sorted(step for tag, step in a if tag == "loss/train_minibatch_mean")
        same = [a["loss/train_minibatch_mean", s] == b.get(("loss/train_minibatch_mean", s)) for s in losses]
        devs = sorted(step for tag, step in a if tag == "loss/dev")
        wa = checkpoint.load(whole / "last.pt")["model"]
        wb = checkpoint.load(split / "last.pt")["model"]
        print(f"{model_type}: `{' '.join(common)}`; exit code at Ctrl-C {proc.returncode}, "
              f"then {resumed.returncode} resumed; message: {[ln for ln in out.splitlines() if 'SIGINT' in ln][0]}")
        print(f"\n| step | uninterrupted loss | interrupted at {stopped}, resumed | identical |")
        print("|---|---|---|---|")
        for s in sorted({1, stopped - 1, stopped, stopped + 1, stopped + 2, steps} | set(range(50, steps + 1, 50))):
            la, lb = a["loss/train_minibatch_mean", s], b.get(("loss/train_minibatch_mean", s))
            print(f"| {s} | {la!r} | {lb!r} | {'yes' if la == lb else 'NO'} |")
        print(f"\nall {len(losses)} per-step losses identical: {all(same)}; "
              f"learning rates identical: {all(a['lr', s] == b.get(('lr', s)) for s in losses)}; "
              f"dev losses at {devs} identical: {all(a['loss/dev', s] == b.get(('loss/dev', s)) for s in devs)}; "
              f"final weights identical: {all(torch.equal(wa[k], wb[k]) for k in wa)}\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1:] == ["resume"]:
        for kind in ("mlp", "wavenet"):
            print_resume_table(kind)
    else:
        print_table()
