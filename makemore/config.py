"""Typed experiment configuration: dataclasses with defaults, validation, and the resolved config as YAML.

Imports nothing from the package: the model section is checked against a dataclass that the
caller looks up (the model registry), so adding a model never touches this file. Reading YAML
files and --set overrides is configfile.py's.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import interegular
import yaml

from .output import shorten


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message lists every problem found."""


@dataclass
class DataConfig:
    """Where the items come from and how they are split."""

    input: str | None = None
    """Text file with one item a line; None trains on the bundled US census first names."""
    encoding: str = "utf-8"
    """Text encoding of the input file."""
    max_length: int | None = None
    """Drop items longer than this many characters (None keeps every item)."""
    seed: int = 42
    """Seed of the shuffle that splits the items; 42 reproduces the course's split exactly."""
    dev_fraction: float = 0.1
    """Share of the items held out for the dev split."""
    test_fraction: float = 0.1
    """Share of the items held out for the test split."""
    labeled: bool = False
    """Each line is LABEL<TAB>ITEM: one model learns every label and generates by label."""

    def problems(self) -> list[str]:
        out = []
        if self.max_length is not None and self.max_length < 1:
            out.append(f"data.max_length must be at least 1, got {self.max_length}")
        for name in ("dev_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                out.append(f"data.{name} must be between 0 and 0.5, got {getattr(self, name)}")
        return out


@dataclass
class TrainConfig:
    """How a trainable model is optimized, evaluated and logged."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    """Optimizer: AdamW, or SGD with optional momentum."""
    lr: float = 3e-3
    """Peak learning rate."""
    weight_decay: float = 0.01
    """Decoupled weight decay (AdamW) or L2 penalty (SGD) on matrices; biases and gains are exempt."""
    momentum: float = 0.0
    """SGD momentum (ignored by AdamW)."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW's moment decay rates."""
    schedule: Literal["constant", "step", "cosine"] = "cosine"
    """Learning-rate schedule: constant; step (lr times step_factor from step_at on); cosine decay."""
    warmup_steps: int = 0
    """Steps of linear warm-up from zero at the start (any schedule)."""
    min_lr_ratio: float = 0.0
    """Cosine schedule: the final learning rate as a fraction of the peak."""
    step_at: float = 0.75
    """Step schedule: the fraction of max_steps after which the rate drops."""
    step_factor: float = 0.1
    """Step schedule: the factor the rate is multiplied by."""
    batch_size: int = 32
    """Examples a step: context windows for window models, whole items for sequence models. Under torchrun
    this is the global batch, split evenly over the processes and their grad_accum micro-steps."""
    grad_accum: int = 1
    """Micro-steps a step: the batch is cut into this many parts, their gradients summed before one update
    (for batches larger than memory); the same step as one whole batch, up to float rounding."""
    max_steps: int = 10_000
    """Optimizer steps to take."""
    grad_clip: float = 0.0
    """Clip the gradient's global norm to this value (0 turns clipping off)."""
    eval_interval: int = 1000
    """Evaluate on the whole dev split, checkpoint and sample every this many steps."""
    log_interval: int = 50
    """Update the progress bar and TensorBoard every this many steps."""
    eval_samples: int = 5
    """Words sampled and printed at each evaluation."""
    target_loss: float | None = None
    """Stop as soon as the dev NLL reaches this value."""
    diagnostics_interval: int = 0
    """Record per-layer activation, gradient and update statistics every this many steps (0 = off)."""
    device: str = "auto"
    """Torch device: auto (cuda, then mps, then cpu: the first this machine has), cpu, cuda, cuda:1, mps."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Training precision: auto (bfloat16 autocast on a CUDA GPU that supports it, else float32), float32,
    bfloat16 (CUDA only). Weights, evaluation and sampling stay float32."""
    threads: int = 0
    """CPU threads for torch (0 lets torch choose: one per physical core)."""
    compile: bool = False
    """Compile the model with torch.compile, falling back to eager where it cannot."""
    ddp_timeout: float = 300.0
    """Under torchrun: seconds a process waits for the others at a collective before the run fails."""

    def problems(self) -> list[str]:
        out = []
        positive = ("lr", "batch_size", "max_steps", "eval_interval", "log_interval", "ddp_timeout")
        out += [f"train.{n} must be positive, got {getattr(self, n)}" for n in positive if getattr(self, n) <= 0]
        nonneg = ("weight_decay", "momentum", "warmup_steps", "grad_clip", "eval_samples", "threads",
                  "diagnostics_interval")
        out += [f"train.{n} must not be negative, got {getattr(self, n)}" for n in nonneg if getattr(self, n) < 0]
        if self.grad_accum < 1:
            out.append(f"train.grad_accum must be at least 1 (1: no accumulation), got {self.grad_accum}")
        elif self.batch_size > 0 and self.batch_size % self.grad_accum:
            out.append(f"train.batch_size {self.batch_size} does not split into train.grad_accum {self.grad_accum} "
                       f"equal micro-batches: use a multiple of {self.grad_accum}")
        if not 0 <= self.min_lr_ratio <= 1:
            out.append(f"train.min_lr_ratio must be between 0 and 1, got {self.min_lr_ratio}")
        if not 0 < self.step_at <= 1:
            out.append(f"train.step_at must be in (0, 1], got {self.step_at}")
        if self.step_factor <= 0:
            out.append(f"train.step_factor must be positive, got {self.step_factor}")
        if not all(0 <= b < 1 for b in self.betas):
            out.append(f"train.betas must each be in [0, 1), got {list(self.betas)}")
        if self.target_loss is not None and self.target_loss <= 0:
            out.append(f"train.target_loss must be positive, got {self.target_loss}")
        return out


@dataclass
class SampleConfig:
    """How words are generated from a trained model."""

    num: int = 20
    """How many words to generate."""
    temperature: float = 1.0
    """Divide the logits by this before sampling; below 1 is more conservative."""
    top_k: int | None = None
    """Sample only among the k most likely characters (None: all of them)."""
    top_p: float | None = None
    """Nucleus sampling: only the most likely characters holding this much probability (None: all of them)."""
    prefix: str = ""
    """Every word starts with these characters."""
    suffix: str = ""
    """Keep only words that end with these characters (drawn and rejected until found)."""
    contains: str = ""
    """Keep only words that contain these characters."""
    regex: str | None = None
    """Keep only words in which this regular expression is found (Python re.search), by rejection."""
    match: str | None = None
    """Only words that this regular expression matches as a whole (compiled by interegular to an automaton)."""
    min_length: int = 1
    """Shortest word: the model may not end a word before this many characters. At least 1: an empty item is
    not a word (0, as older runs saved it, is taken as 1)."""
    max_length: int | None = None
    """Longest word: words the model has not ended within this many characters are rejected
    (None: words are cut at twice the longest training item)."""
    novel: bool = False
    """Keep only words found in no split of the training file."""
    unique: bool = False
    """Keep each word once."""
    tries: int | None = None
    """Most words drawn to find num that meet the constraints (None: 100 a word asked for, at least 10,000)."""
    constrain: Literal["mask", "reject"] = "mask"
    """How match, suffix, contains and max_length are kept: "mask" draws only characters after which a word
    can still meet them (every word drawn meets them; the model renormalized step by step, not its exact
    conditional distribution); "reject" draws freely and rejects the words that miss (exact, slow when rare)."""
    most_likely: bool = False
    """Instead of drawing: the num most probable words that meet the constraints, exactly, most likely first."""
    budget: int | None = None
    """Most prefixes the most-likely search expands (None: 100,000)."""
    seed: int = 42
    """Seed of the sampler's random generator."""

    def problems(self) -> list[str]:
        out = []
        if self.num < 1:
            out.append(f"sample.num must be at least 1, got {self.num}")
        if self.temperature <= 0:
            out.append(f"sample.temperature must be positive, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            out.append(f"sample.top_k must be at least 1, got {self.top_k}")
        if self.max_length is not None and self.max_length < 1:
            out.append(f"sample.max_length must be at least 1, got {self.max_length}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            out.append(f"sample.top_p must be in (0, 1], got {self.top_p}")
        if self.min_length < 0:
            out.append(f"sample.min_length must not be negative, got {self.min_length}")
        if self.max_length is not None and self.min_length > self.max_length:
            out.append(f"sample.min_length {self.min_length} is above sample.max_length {self.max_length}")
        if self.tries is not None and self.tries < 1:
            out.append(f"sample.tries must be at least 1, got {self.tries}")
        if self.regex:
            try:
                re.compile(self.regex)
            except (re.error, RecursionError, OverflowError) as e:  # deep nesting overflows the compiler
                out.append(f"sample.regex {shorten(self.regex)} is not a valid regular expression ({e})")
        if not 0 <= self.seed < 2**63:
            out.append(f"sample.seed must be between 0 and 2**63 - 1, got {self.seed}")
        return out + self.search_problems()

    def search_problems(self) -> list[str]:
        """Problems of the options of constrained generation and the most-likely search."""
        out = []
        if self.match:
            try:
                interegular.parse_pattern(self.match).to_fsm()
            except (interegular.InvalidSyntax, interegular.Unsupported, ValueError, KeyError, IndexError,
                    RecursionError) as e:
                why = str(e).strip() or type(e).__name__
                out.append(f"sample.match {shorten(self.match)} is not a regular expression interegular can compile "
                           f"({why}); fix the pattern")
        if self.budget is not None and self.budget < 1:
            out.append(f"sample.budget must be at least 1, got {self.budget}")
        if self.budget is not None and not self.most_likely:
            out.append("sample.budget bounds the most-likely search: use it with most_likely (draws are bounded "
                       "by tries)")
        if self.most_likely:
            given = [k for k in DRAWING_OPTIONS if getattr(self, k) != getattr(SampleConfig, k)]
            if given:
                out.append(f"sample.most_likely is an exact search, not a draw: leave out {', '.join(given)} "
                           f"(the search is bounded by budget)")
        return out


DRAWING_OPTIONS = ("temperature", "top_k", "top_p", "tries")  # what only random draws use


@dataclass
class Config:
    """One experiment: data, model, training and sampling, plus where the run is written."""

    work_dir: str = "out"
    """Run directory: checkpoints, resolved config, TensorBoard logs, results."""
    seed: int = 42
    """Seed of model initialization, batch order and the samples printed during training."""
    model_type: str = ""
    """Registered model name (the `type` key of the YAML model section; resolve sets it)."""
    model: Any = None
    """The model's own config dataclass, owned by the model class."""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


SECTIONS = {"data": DataConfig, "train": TrainConfig, "sample": SampleConfig}
TOP_LEVEL = ("work_dir", "seed")


def _shown(key: Any) -> str:
    """A key as the user wrote it, or its repr when it would break the one-line message (newlines, non-strings)."""
    return key if isinstance(key, str) and key.isprintable() and 0 < len(key) <= 40 else shorten(key)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check value against a type hint; returns (ok, converted value)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, out = _coerce(value, arg)
            if ok:
                return True, out
        return False, value
    if origin is Literal:
        return value in typing.get_args(tp), value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            return False, value
        pairs = [_coerce(v, a) for v, a in zip(value, args)]
        return all(ok for ok, _ in pairs), tuple(v for _, v in pairs)
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            return ok, float(value) if ok else value
        except OverflowError:  # an integer beyond any float
            return False, value
    if tp is str:
        return isinstance(value, str), value
    return True, value


def parse_dataclass(cls: type, raw: Any, where: str, errors: list[str]) -> Any:
    """Build cls from a mapping, appending every unknown key, wrong type and bad value to errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where} must be a mapping of options, got {type(raw).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            errors.append(f"unknown key {where}.{_shown(key)} (valid keys: {valid})")
            continue
        ok, converted = _coerce(value, hints[key])
        if not ok:
            errors.append(f"{where}.{key} must be {_type_name(hints[key])}, got {shorten(value)}")
            continue
        if isinstance(converted, float) and not math.isfinite(converted):  # nan slips past every `<= 0` check
            errors.append(f"{where}.{key} must be a finite number, got {shorten(value)}")
            continue
        values[key] = converted
    obj = cls(**values)
    if hasattr(obj, "problems"):
        errors.extend(obj.problems())
    return obj


def resolve(raw: dict, registry: Mapping[str, Any], default_type: str) -> Config:
    """Turn a raw nested mapping (YAML plus overrides) into a validated Config.

    registry maps each model type to its class; the class owns its config dataclass (`Config`)
    and the training defaults that suit it (`train_defaults`), which the raw train section
    overrides; default_type is the type of a model section without one. Every problem in every
    section is collected and reported at once.
    """
    errors: list[str] = []
    known = set(SECTIONS) | set(TOP_LEVEL) | {"model"}
    for key in raw:
        if key not in known:
            errors.append(f"unknown key {_shown(key)} (valid keys: {', '.join(sorted(known))})")
    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, dict):
        errors.append("model must be a mapping with a type key and the model's options")
        model_raw = {}
    model_raw = dict(model_raw)
    cfg = Config(model_type=model_raw.pop("type", default_type))
    model_cls = registry.get(cfg.model_type) if isinstance(cfg.model_type, str) else None
    if model_cls is None:
        errors.append(f"unknown model type {shorten(cfg.model_type)} (valid types: {', '.join(sorted(registry))})")
    else:
        cfg.model = parse_dataclass(model_cls.Config, model_raw, "model", errors)

    for name in TOP_LEVEL:
        if name in raw:
            tp = typing.get_type_hints(Config)[name]
            ok, value = _coerce(raw[name], tp)
            if ok:
                setattr(cfg, name, value)
            else:
                errors.append(f"{name} must be {_type_name(tp)}, got {shorten(raw[name])}")
    if not 0 <= cfg.seed < 2**63:  # torch's generators take 64-bit seeds; printed samples use seed + step
        errors.append(f"seed must be between 0 and 2**63 - 1, got {cfg.seed}")
    for name, cls in SECTIONS.items():
        section = raw.get(name)
        if name == "train" and model_cls is not None and isinstance({} if section is None else section, dict):
            section = {**getattr(model_cls, "train_defaults", {}), **(section or {})}
        setattr(cfg, name, parse_dataclass(cls, section, name, errors))
    if errors:
        raise ConfigError("; ".join(errors))
    return cfg


def to_dict(cfg: Config) -> dict:
    """The resolved config as plain nested data, with the model section carrying its type."""
    out = {name: getattr(cfg, name) for name in TOP_LEVEL}
    out["model"] = {"type": cfg.model_type, **dataclasses.asdict(cfg.model)}
    for name in SECTIONS:
        section = dataclasses.asdict(getattr(cfg, name))
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return out


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
