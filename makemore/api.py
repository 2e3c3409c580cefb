"""The Python API, for notebooks and scripts; the command line is a thin layer over it.

    import makemore
    run = makemore.train(input="names.txt", type="mlp", max_steps=2000, work_dir="out/mlp")
    run = makemore.load("out/mlp")
    run.sample(10, temperature=0.8, novel=True)
    run.score(["emma", "zzxq"])
    run.evaluate()
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from pathlib import Path

import torch

from . import checkpoint, configfile
from . import config as C
from .data import Dataset
from .device import resolve_device
from .evaluate import evaluate, evaluate_labels
from .labeled import label_id, label_prior, unlabelled
from .likely import SearchStats, most_likely
from .mix import MIXTURE_FILE, load_mixture
from .models import DEFAULT_MODEL, MODELS, Model
from .output import shorten
from .runs import build_config, train_run
from .sample import SampleError, SampleStats, sample, tag
from .score import Score, classify, problems, score_words


class Samples(list):
    """Sampled words (a list of str), with .origins ('train', 'dev/test' or 'new') and .stats (SampleStats).

    The most likely words (most_likely=True) also have .logprobs (nats, the end included), .probs (the
    whole word's probability) and .nlls (nats per character, the end counted: eval's unit). A labelled
    run's words have .labels, each word's label (None for an unlabelled run).
    """

    def __init__(self, words: list[str], origins: list[str], stats: SampleStats | SearchStats,
                 logprobs: list[float] | None = None, labels: list[str] | None = None):
        super().__init__(words)
        self.origins, self.stats, self.logprobs, self.labels = origins, stats, logprobs, labels

    @property
    def probs(self) -> list[float] | None:
        return None if self.logprobs is None else [math.exp(lp) for lp in self.logprobs]

    @property
    def nlls(self) -> list[float] | None:
        return None if self.logprobs is None else [-lp / (len(w) + 1) for w, lp in zip(self, self.logprobs)]


class Run:
    """A trained model with its config and data (vocabulary and split): sample, score and evaluate it."""

    def __init__(self, cfg: C.Config, data: Dataset, model: Model, path: Path | None = None):
        self.cfg, self.model, self.path = cfg, model.eval(), path
        self.data = data.to(model.device)
        self.results: dict = {}  # what training reported, for a run that makemore.train made

    @property
    def vocab(self):
        return self.data.vocab

    @property
    def labels(self) -> list[str]:
        """The label names a labelled run learned ([] for an unlabelled run)."""
        return list(self.data.labels)

    def label_ids(self, label: str | list[str] | None) -> list[int] | None:
        """Label ids of a label name, a list of names, or "all" / None (every label; None when unlabelled)."""
        if label is None or label == "all" or label == ["all"]:
            return None if not self.data.labels else list(range(len(self.data.labels)))
        names = [label] if isinstance(label, str) else list(label)
        return [label_id(self.data, name) for name in names]

    @property
    def model_type(self) -> str:
        """The model's registered type, or for a mixture its parts' types and weights."""
        return self.model.describe(self.cfg.model_type)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"Run({self.model_type}, {self.model.num_params():,} parameters{where})"

    def sample_config(self, **options) -> C.SampleConfig:
        """The run's own sample section (config.yaml) with the options given (not None) over it, validated."""
        raw = C.to_dict(self.cfg)
        options.pop("label", None)  # not a config key: a labelled run's label is chosen per call (sample)
        raw["sample"].update({k: v for k, v in options.items() if v is not None})
        if raw["sample"].get("most_likely"):  # a search draws nothing: the run's own drawing options do not apply
            for key in C.DRAWING_OPTIONS:
                if options.get(key) is None:
                    raw["sample"].pop(key, None)
        return C.resolve(raw, MODELS, DEFAULT_MODEL).sample

    def sample(self, num: int | None = None, **options) -> Samples:
        """num words (default: the run's sample.num), drawn with the run's sample options and these over them.

        options: temperature, top_k, top_p, prefix, suffix, contains, regex, match, min_length,
        max_length, novel, unique, tries, constrain, seed, most_likely, budget (see config.SampleConfig),
        and label: a labelled run's label, a list of them (each word's label drawn by their train
        frequencies), or "all" (the default). When the tries (or the search's budget) run out first, fewer
        words come back, with a warning; .stats says what was drawn and rejected (or searched).
        """
        label = options.pop("label", None)
        ids = self.label_ids(label)
        s = self.sample_config(num=num, **options)
        if s.most_likely:
            if ids is not None and len(ids) != 1:
                raise SampleError("the most likely words of a labelled run are those of one label: give one --label "
                                  f"(the run's labels: {', '.join(self.data.labels[:20])})")
            labels = None if ids is None else torch.tensor(ids, device=self.model.device)
            words, logprobs, stats = most_likely(
                self.model, self.data, s.num, prefix=s.prefix, suffix=s.suffix, contains=s.contains, match=s.match,
                regex=s.regex, min_length=s.min_length, max_length=s.max_length, novel=s.novel, budget=s.budget,
                labels=labels)
            origins = tag(words, *self.data.item_sets)
            word_labels = None if ids is None else [self.data.labels[ids[0]]] * len(words)
        else:
            generator = torch.Generator(device=self.model.device).manual_seed(s.seed)
            words, origins, stats = sample(
                self.model, self.data, s.num, generator, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                prefix=s.prefix, suffix=s.suffix, contains=s.contains, regex=s.regex, match=s.match,
                min_length=s.min_length, max_length=s.max_length, novel=s.novel, unique=s.unique, tries=s.tries,
                constrain=s.constrain, label_weights=label_prior(self.data, self.model.device, ids))
            logprobs = None
            word_labels = None if stats.labels is None else [self.data.labels[i] for i in stats.labels]
        if not stats.complete:
            warnings.warn(stats.shortfall(), stacklevel=2)
        return Samples(words, origins, stats, logprobs, word_labels)

    def score(self, words: list[str] | str, skip_unknown: bool = False, label: str | None = None) -> list[Score]:
        """Each word's NLL, log-probability, perplexity and per-character probabilities (see Score).

        A word with characters outside the vocabulary (or longer than the model reads) is an error,
        or left out with skip_unknown=True. A labelled run scores under one label, or without one under
        every label weighted by their train frequencies (the mixture the run samples from by default).
        """
        words = [words] if isinstance(words, str) else list(words)
        if skip_unknown:
            bad = problems(self.model, self.data, words)
            words = [w for w in words if w not in bad]
        one = None if label in (None, "all") else label_id(self.data, label)  # None: the mixture of every label
        return score_words(self.model, self.data, words, one)

    def classify(self, words: list[str] | str) -> list[dict[str, float]]:
        """P(label | word) of each word and label, by Bayes with the labels' train frequencies, likeliest first."""
        words = [words] if isinstance(words, str) else list(words)
        if not self.data.labels:
            raise unlabelled("it has no labels to rank")
        return classify(self.model, self.data, words)

    def evaluate(self, splits: tuple[str, ...] = ("train", "dev", "test")) -> dict:
        """Exact NLL per character (nats, "nll") and bits per character ("bpc") of each split; a labelled run's
        also each label's, under "labels": {label: {split: nll}}."""
        out = evaluate(self.model, self.data, splits)
        if self.data.labels:
            out["labels"] = evaluate_labels(self.model, self.data, splits)
        return out


def load(path: str | Path, checkpoint_name: str | None = None, device: str = "auto") -> Run:
    """A run folder (its best checkpoint, model.pt, or checkpoint_name: last.pt), a checkpoint file, or a
    safetensors export (model.safetensors beside its model.json)."""
    device = resolve_device(device)
    path = Path(path)
    if path.is_dir() and (path / MIXTURE_FILE).exists():  # made by makemore mix
        cfg, data, model = load_mixture(path, device)
        return Run(cfg, data, model, path / MIXTURE_FILE)
    is_file = path.is_file() or (not path.exists() and path.suffix in (".pt", ".safetensors"))
    file = path if is_file else path / (checkpoint_name or "model.pt")
    if path.is_dir() and checkpoint_name is None and not file.exists() and (path / "model.safetensors").exists():
        file = path / "model.safetensors"  # a shipped folder: the export, without the checkpoint
    if file.suffix == ".safetensors":
        from .export import read_safetensors  # the optional package is needed only here

        state = read_safetensors(file)
    else:
        state = checkpoint.load(file)
    cfg, data, model = checkpoint.restore(state, device)
    return Run(cfg, data, model, file)


def train(config: str | Path | None = None, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, **options) -> Run:
    """Train a run (as `makemore train`) and return it, ready to sample, score and evaluate.

    config: an experiment YAML file; options override it, each a config key by its own name
    (input, type, max_steps, lr, n_embd, work_dir, seed, ...) or dotted ("train.betas"). run.results
    holds the training report. Interrupted (Ctrl-C), it returns the last checkpoint; continue it with
    resume=True.
    """
    overrides = config_keys(options, config)
    cfg = build_config(str(config) if config is not None else None, overrides)
    results = train_run(cfg, resume=resume, overwrite=overwrite, progress=progress, overrides=overrides)
    interrupted = results.get("stopped") == "interrupted"
    work_dir = Path(cfg.work_dir)
    if interrupted and not (work_dir / "last.pt").exists():
        raise KeyboardInterrupt
    run = load(work_dir, "last.pt" if interrupted else "model.pt", device=cfg.train.device)
    run.results = results
    return run


SECTION_KEYS = {"data": C.DataConfig, "train": C.TrainConfig, "sample": C.SampleConfig}
TOP_KEYS = {"type": "model.type", "work_dir": "work_dir", "seed": "seed"}


def config_keys(options: dict, config: str | Path | None = None) -> dict:
    """Keyword options as dotted config keys: max_steps -> train.max_steps, input -> data.input, type -> model.type.

    A name found in two sections goes to the first of data, train, sample (max_length: the data's cap;
    the sampler's is sample.max_length); seed seeds everything, as --seed does. Model options are the
    chosen model type's; an unknown name is a one-line error with the closest valid names.
    """
    model_type = options.get("type") or options.get("model.type")
    if model_type is None and config is not None:
        model_type = (configfile.load_yaml(config).get("model") or {}).get("type")
    model_cls = MODELS.get(model_type or DEFAULT_MODEL)
    known = dict(TOP_KEYS)
    if model_cls is not None:  # an unknown type is reported by the config, with the valid types
        known.update({f.name: f"model.{f.name}" for f in dataclasses.fields(model_cls.Config)})
    for section, cls in reversed(SECTION_KEYS.items()):  # data wins over train over sample over the model
        known.update({f.name: f"{section}.{f.name}" for f in dataclasses.fields(cls) if f.name != "seed"})
    out = {}
    for name, value in options.items():
        if "." in name:
            out[name] = value
        elif name in known:
            out[known[name]] = value
        else:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            kind = model_type or DEFAULT_MODEL  # an unknown type is the config's error; here it is only named
            raise C.ConfigError(f"unknown option {shorten(name)} for a {kind if len(kind) <= 40 else shorten(kind)} "
                                f"run: {hint}options are the config keys by name (see help(makemore.train))")
    if "seed" in out:  # one seed for everything, as in makemore.py
        out.setdefault("data.seed", out["seed"])
    return out


__all__ = ["Run", "Samples", "load", "train"]
