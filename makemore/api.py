"""The Python API, for notebooks and scripts; the command line is a thin layer over it.

    import makemore
    run = makemore.load("out/mlp")
    run.sample(10, temperature=0.8, novel=True)
    run.score(["emma", "zzxq"])
    run.evaluate()
"""

from __future__ import annotations

from pathlib import Path

from . import checkpoint
from . import config as C
from .data import Dataset
from .evaluate import evaluate
from .models import Model
from .runs import check_device
from .score import Score, problems, score_words


class Run:
    """A trained model with its config and data (vocabulary and split): sample, score and evaluate it."""

    def __init__(self, cfg: C.Config, data: Dataset, model: Model, path: Path | None = None):
        self.cfg, self.model, self.path = cfg, model.eval(), path
        self.data = data.to(model.device)

    @property
    def vocab(self):
        return self.data.vocab

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"Run({self.cfg.model_type}, {self.model.num_params():,} parameters{where})"

    def score(self, words: list[str] | str, skip_unknown: bool = False) -> list[Score]:
        """Each word's NLL, log-probability, perplexity and per-character probabilities (see Score).

        A word with characters outside the vocabulary (or longer than the model reads) is an error,
        or left out with skip_unknown=True.
        """
        words = [words] if isinstance(words, str) else list(words)
        if skip_unknown:
            bad = problems(self.model, self.data, words)
            words = [w for w in words if w not in bad]
        return score_words(self.model, self.data, words)

    def evaluate(self, splits: tuple[str, ...] = ("train", "dev", "test")) -> dict:
        """Exact NLL per character (nats, "nll") and bits per character ("bpc") of each split."""
        return evaluate(self.model, self.data, splits)


def load(path: str | Path, checkpoint_name: str | None = None, device: str = "cpu") -> Run:
    """A finished run folder (its best checkpoint, model.pt, or checkpoint_name: last.pt) or a checkpoint file."""
    check_device(device)
    path = Path(path)
    file = path / (checkpoint_name or "model.pt") if path.is_dir() else path
    cfg, data, model = checkpoint.restore(checkpoint.load(file), device)
    return Run(cfg, data, model, file)


__all__ = ["Run", "load"]
