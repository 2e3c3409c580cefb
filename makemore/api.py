"""The Python API, for notebooks and scripts; the command line is a thin layer over it.

    import makemore
    run = makemore.load("out/mlp")
    run.sample(10, temperature=0.8, novel=True)
    run.score(["emma", "zzxq"])
    run.evaluate()
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from . import checkpoint
from . import config as C
from .data import Dataset
from .device import resolve_device
from .evaluate import evaluate
from .models import MODELS, Model
from .sample import SampleStats, sample
from .score import Score, problems, score_words


class Samples(list):
    """Sampled words (a list of str), with .origins ('train', 'dev/test' or 'new') and .stats (SampleStats)."""

    def __init__(self, words: list[str], origins: list[str], stats: SampleStats):
        super().__init__(words)
        self.origins, self.stats = origins, stats


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

    def sample_config(self, **options) -> C.SampleConfig:
        """The run's own sample section (config.yaml) with the options given (not None) over it, validated."""
        raw = C.to_dict(self.cfg)
        raw["sample"].update({k: v for k, v in options.items() if v is not None})
        return C.resolve(raw, MODELS).sample

    def sample(self, num: int | None = None, **options) -> Samples:
        """num words (default: the run's sample.num), drawn with the run's sample options and these over them.

        options: temperature, top_k, top_p, prefix, suffix, contains, regex, min_length, max_length,
        novel, unique, tries, seed (see config.SampleConfig). When the tries run out first, fewer words
        come back, with a warning; .stats says what was drawn and rejected.
        """
        s = self.sample_config(num=num, **options)
        generator = torch.Generator(device=self.model.device).manual_seed(s.seed)
        words, origins, stats = sample(
            self.model, self.data, s.num, generator, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
            prefix=s.prefix, suffix=s.suffix, contains=s.contains, regex=s.regex, min_length=s.min_length,
            max_length=s.max_length, novel=s.novel, unique=s.unique, tries=s.tries)
        if not stats.complete:
            warnings.warn(stats.shortfall(), stacklevel=2)
        return Samples(words, origins, stats)

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


def load(path: str | Path, checkpoint_name: str | None = None, device: str = "auto") -> Run:
    """A finished run folder (its best checkpoint, model.pt, or checkpoint_name: last.pt) or a checkpoint file."""
    device = resolve_device(device)
    path = Path(path)
    file = path / (checkpoint_name or "model.pt") if path.is_dir() else path
    cfg, data, model = checkpoint.restore(checkpoint.load(file), device)
    return Run(cfg, data, model, file)


__all__ = ["Run", "Samples", "load"]
