"""Mixtures of trained runs: p(next | word so far) = sum_i w_i p_i(next | word so far), weights fitted on dev.

The runs must share the vocabulary and the split (the same file, split the same way). The mixture
reads whole items like a sequence model, giving each window model its windows of the same item,
so eval, score and the sampler treat it as any model. A mixture run folder holds mixture.json
(the weights and the parts' files) and one plain checkpoint a part, so it moves as one folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from . import config as C
from .data import Dataset, Split
from .evaluate import evaluate, target_nlls
from .models import Model, SequenceModel
from .output import dumps, shorten

MIXTURE_FILE = "mixture.json"
FORMAT, VERSION = "makemore-mixture", 1


class MixError(C.ConfigError):
    """Runs that cannot be mixed, or a mixture folder that cannot be read or written."""


class Mixture(SequenceModel):
    """A weighted mixture of models of one vocabulary; reads (B, T) whole items, returns log-probabilities (B, T, V)."""

    trainable = False
    standalone = False

    def __init__(self, parts: list[Model], weights: list[float], types: list[str] | None = None):
        first = parts[0]
        super().__init__(None, first.vocab_size, first.max_length)
        self.parts = nn.ModuleList(parts)
        self.types = types or [type(p).__name__.lower() for p in parts]  # the parts' registered types, to show
        self.register_buffer("log_weights", torch.tensor(weights, dtype=torch.float32, device=first.device).log())

    @property
    def weights(self) -> list[float]:
        return self.log_weights.exp().tolist()

    @property
    def context_limit(self) -> int | None:
        limits = [p.context_limit for p in self.parts if p.context_limit is not None]
        return min(limits) if limits else None

    def part_logprobs(self, idx: torch.Tensor) -> torch.Tensor:
        """Each part's log-probabilities at every position, (K, B, T, V)."""
        return torch.stack([part.position_logits(idx).float().log_softmax(dim=-1) for part in self.parts])

    def forward(self, idx, targets=None):
        logp = torch.logsumexp(self.part_logprobs(idx) + self.log_weights.view(-1, 1, 1, 1), dim=0)  # (B, T, V)
        return logp, self.loss(logp, targets)

    def init_state(self, n: int):
        return [part.init_state(n) for part in self.parts]

    def step(self, tokens, state):
        logps, new = [], []
        for part, s in zip(self.parts, state):
            logits, s = part.step(tokens, s)
            logps.append(logits.float().log_softmax(dim=-1))
            new.append(s)
        return torch.logsumexp(torch.stack(logps) + self.log_weights.view(-1, 1, 1), dim=0), new

    def keep(self, state, rows):
        return [part.keep(s, rows) for part, s in zip(self.parts, state)]

    def num_params(self) -> int:
        return sum(part.num_params() for part in self.parts) + len(self.parts)

    @property
    def needs_fit(self) -> bool:
        return False  # its parts are trained runs, its weights fitted on dev when it is made

    def describe(self, model_type: str) -> str:
        return "mixture of " + ", ".join(f"{t} {w:.3f}" for t, w in zip(self.types, self.weights))


@torch.inference_mode()
def part_nlls(parts: list[Model], split: Split) -> torch.Tensor:
    """(targets, K): every part's NLL of every target character of the split, each through its own examples."""
    columns = []
    for part in parts:
        part.eval()
        columns.append(torch.cat(list(target_nlls(part, split))))
    return torch.stack(columns, dim=1)


def fit_weights(nll: torch.Tensor, max_iters: int = 1000, tol: float = 1e-10) -> list[float]:
    """The weights that minimize the mixture's mean NLL over these targets, by EM (the problem is convex).

    Each iteration gives every part the mean of its responsibility for each target; the NLL never rises.
    """
    logp = -nll.double()
    w = torch.full((nll.size(1),), 1.0 / nll.size(1), dtype=torch.float64, device=nll.device)
    for _ in range(max_iters):
        new = torch.softmax(logp + w.log(), dim=1).mean(0)
        done = (new - w).abs().max().item() < tol
        w = new
        if done:
            break
    return w.tolist()


def mixture_nll(nll: torch.Tensor, weights: list[float]) -> float:
    """The mean NLL of the mixture over targets whose part NLLs are the columns of nll."""
    log_w = torch.tensor(weights, dtype=torch.float64, device=nll.device).log()
    return -torch.logsumexp(-nll.double() + log_w, dim=1).mean().item()


def check_compatible(runs: list, names: list[str]) -> None:
    """One vocabulary and one split for every run, or a one-line error naming the first that differs."""
    first = runs[0]
    for run, name in zip(runs[1:], names[1:]):
        if run.vocab.chars != first.vocab.chars:
            raise MixError(f"{name} has another vocabulary than {names[0]}: mix runs trained on the same file")
        if any(a.items != b.items for a, b in zip(run.data.splits.values(), first.data.splits.values())):
            raise MixError(f"{name} has another train/dev/test split than {names[0]}: mix runs trained on the same "
                           f"file with the same split seed")


def mix(runs: list, names: list[str], out: str | Path, overwrite: bool = False) -> dict:
    """Fit the weights on dev, write the mixture run folder, and report every part and the mixture exactly."""
    if len(runs) < 2:
        raise MixError("a mixture needs at least two runs")
    for run, name in zip(runs, names):
        if not run.model.standalone:
            raise MixError(f"{name} is a mixture already: mix its parts (or the runs it was made of) instead")
        if run.labels:
            raise MixError(f"{name} is a labelled run, and mixtures do not carry labels yet: mix unlabelled runs")
    check_compatible(runs, names)
    from .runs import TRAINED, RunLock, clear_run_files  # runs.py knows what every kind of run writes

    out = Path(out)
    if not overwrite and (out / MIXTURE_FILE).exists():
        raise MixError(f"{out} already holds a mixture: pass --overwrite to replace it, or choose another -o")
    if not overwrite and any((out / name).exists() for name in TRAINED):
        raise MixError(f"{out} holds a trained run: pass --overwrite to replace it with this mixture, or choose "
                       f"another -o")
    data = runs[0].data
    parts = [run.model for run in runs]
    dev = part_nlls(parts, data.dev)
    for name, nll in zip(names, dev.mean(0).tolist()):
        if not math.isfinite(nll):
            raise MixError(f"{name} has dev NLL {nll}: its weights are broken (NaN or inf); mix runs that evaluate")
    weights = fit_weights(dev)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MixError(f"cannot create {out}: {e.strerror}; choose another -o") from None
    with RunLock(out):  # no run trains the folder meanwhile; it then holds this mixture alone
        clear_run_files(out, resume=False)
        return write_mixture(runs, names, out, dev, weights)


def write_mixture(runs: list, names: list[str], out: Path, dev: torch.Tensor, weights: list[float]) -> dict:
    """The mixture folder's files: a checkpoint a part, mixture.json, results.json (every split evaluated)."""
    data = runs[0].data
    parts = [run.model for run in runs]
    files = []
    for i, run in enumerate(runs):
        files.append(f"part{i}.pt")  # the part's weights, config and data, without optimizer state
        checkpoint.save(out / files[-1], checkpoint.make_state(run.cfg, run.data, run.model))
    model = Mixture(parts, weights, [run.cfg.model_type for run in runs])
    losses = evaluate(model, data)
    parts_dev = dev.mean(0).tolist()  # each part's exact dev NLL (eval's, summed in another order)
    meta = {"format": FORMAT, "version": VERSION, "parts": files, "sources": [str(n) for n in names],
            "types": [run.cfg.model_type for run in runs], "weights": weights}
    checkpoint.save_text(out / MIXTURE_FILE, dumps(meta, indent=2) + "\n", "mixture")
    results = {"type": "mixture", "params": model.num_params(), "steps": 0, "parts": meta["types"],
               "weights": weights, "parts_dev_nll": parts_dev, **losses}
    checkpoint.save_text(out / "results.json", dumps(results, indent=2) + "\n", "results")
    return results


def weights_problem(files, weights) -> str | None:
    """What is wrong with a mixture's part files and weights as written in mixture.json, or None."""
    if not isinstance(files, list) or not isinstance(weights, list) or len(files) < 2:
        return "it needs a list of at least two parts and a list of their weights"
    if len(weights) != len(files):
        return f"{len(weights)} weights for {len(files)} parts"
    for name, w in zip(files, weights):
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            return f"{shorten(str(name))} is not a file of the mixture's folder"
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            return f"weight {shorten(str(w)) if isinstance(w, str) else w} of {name} is not a finite number"
        if w < 0:
            return f"weight {w} of {name} is negative"
    if abs(math.fsum(weights) - 1.0) > 1e-6:
        return f"weights sum to {math.fsum(weights):.6g}, not 1"
    return None


def load_mixture(folder: Path, device: str = "cpu") -> tuple[C.Config, Dataset, Mixture]:
    """A mixture run folder's config (its first part's), data and model; mixture.json is checked first."""
    path = folder / MIXTURE_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MixError(f"{path} is damaged or not a makemore mixture; make it again with makemore mix")
    files, weights = meta.get("parts"), meta.get("weights")
    problem = weights_problem(files, weights)
    missing = next((name for name in files if not (folder / name).is_file()), None) if problem is None else None
    if missing:
        problem = f"its part {missing} does not exist"
    if problem:
        raise MixError(f"{path}: {problem}; restore the file or make the mixture again with makemore mix")
    restored = []
    for name in files:
        try:
            restored.append(checkpoint.restore(checkpoint.load(folder / name), device))
        except checkpoint.CheckpointError as e:
            raise MixError(f"{path}: part {name} cannot be loaded ({e}); make the mixture again with "
                           f"makemore mix") from None
    cfg, data, _ = restored[0]
    if any(d.vocab.chars != data.vocab.chars for _, d, _ in restored[1:]):
        raise MixError(f"{path}: its parts have other vocabularies; make the mixture again with makemore mix")
    types = [c.model_type for c, _, _ in restored]
    return cfg, data, Mixture([model for _, _, model in restored], weights, types).to(device).eval()
