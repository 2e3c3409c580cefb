"""The contract every model implements, and what the spine needs to know about a model.

A model owns how it reads a batch and how it generates:

- forward(idx, targets=None) -> (logits, loss), as in makemore.py;
- examples(split): the split as training/evaluation examples, with len() and get(rows) -> (x, y);
- init_state(n) and step(tokens, state) -> (logits (n, V), state): generation one character at a
  time, carrying whatever the model needs (a context window, a hidden state, a key/value cache,
  per-layer queues); keep(state, rows) drops the rows of finished words;
- what the spine asks instead of testing a model's family: position_logits(idx) (the next-character
  logits at every position of whole items), context_width, needs_fit and fit_split(split), describe,
  kind and standalone (what an export records, whether it is one checkpoint), and `with
  model.evaluating():` (eval mode, the mode found given back).

WindowModel and SequenceModel give the two families their defaults; a model overrides step() to
carry state instead of re-reading its input.

Labels come by construction (see attach_labels): a labelled model's inputs carry the label id as a
first column, which the base reads off before forward; generation carries the labels beside the
model's own state. A model with a character embedding `wte` needs nothing more.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class ModelConfigError(ValueError):
    """A model option that cannot work (e.g. a context the architecture cannot fuse)."""


def sizes_problems(config) -> list[str]:
    """Every size option (an int field) of a model config below 1, as config problems."""
    return [f"model.{k} must be at least 1, got {v}" for k, v in vars(config).items()
            if isinstance(v, int) and not isinstance(v, bool) and v < 1]


def dropout_problems(config) -> list[str]:
    """model.dropout outside [0, 1), as a config problem."""
    p = getattr(config, "dropout", 0.0)
    return [] if 0 <= p < 1 else [f"model.dropout must be in [0, 1) (0 turns it off), got {p}"]


@dataclass
class NoOptions:
    """Config of a model without options."""


def keep_rows(state: Any, rows: torch.Tensor) -> Any:
    """The state of the chosen batch rows: every tensor in it indexed along its first dimension."""
    if isinstance(state, torch.Tensor):
        return state[rows]
    if isinstance(state, (list, tuple)):
        return type(state)(keep_rows(s, rows) for s in state)
    if isinstance(state, dict):
        return {k: keep_rows(v, rows) for k, v in state.items()}
    return state


@dataclass
class LabelledState:
    """A labelled model's generation state: each row's label id beside the model's own state."""

    labels: torch.Tensor
    inner: Any


def labelled(name: str, method):
    """A subclass's init_state/step/keep/fit, made to carry labels without the subclass knowing them."""
    if name == "init_state":
        def wrapped(self, n, labels=None):
            if labels is None:
                return method(self, n)
            with self.reading(labels):  # a state built from embeddings (WaveNet's) may hold the label too
                return LabelledState(labels, method(self, n))
    elif name == "step":
        def wrapped(self, tokens, state):
            if not isinstance(state, LabelledState):
                return method(self, tokens, state)
            with self.reading(state.labels):
                logits, inner = method(self, tokens, state.inner)
            return logits, LabelledState(state.labels, inner)
    elif name == "keep":
        def wrapped(self, state, rows):
            if not isinstance(state, LabelledState):
                return method(self, state, rows)
            return LabelledState(state.labels[rows], method(self, state.inner, rows))
    else:  # fit: the contexts of labelled data carry the label column
        def wrapped(self, contexts, targets):
            if not self.labels:
                return method(self, contexts, targets)
            with self.reading(contexts[:, 0]):
                return method(self, contexts[:, 1:], targets)
    wrapped.__doc__, wrapped.__name__, wrapped.__wrapped__ = method.__doc__, name, method
    return wrapped


def carry_labels(cls: type) -> None:
    """Wrap the generation and fitting methods a class defines itself so that they carry labels."""
    for name in ("init_state", "step", "keep", "fit"):
        if name in cls.__dict__:
            setattr(cls, name, labelled(name, cls.__dict__[name]))


_READING = threading.local()  # id(model) -> the label ids it is reading, in this thread
_NOTHING = object()


class Model(nn.Module):
    """Base class: forward(idx, targets=None) -> (logits, loss), examples(split), init_state/step."""

    Config: ClassVar[type] = NoOptions
    trainable: ClassVar[bool] = True  # False: fitted by one counting pass (fit), no optimizer
    train_defaults: ClassVar[dict] = {}  # training settings that suit this model, under any config

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        carry_labels(cls)

    def __init__(self, config, vocab_size: int, max_length: int | None = None):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.max_length = max_length  # the longest item of the data, when known
        self.labels: list[str] = []  # the label names of a labelled model (attach_labels)

    @property
    def label_ids(self) -> torch.Tensor | None:
        """The label of each row of the batch this thread is reading (see reading), or None."""
        return _READING.__dict__.get(id(self))

    def attach_labels(self, labels: list[str]) -> None:
        """Condition on labels: a learned vector per label, zero at first, added to every character embedding.

        The embedding is the label site's output (label_site(): `wte` by default), so every position of
        every model reads the label: each window, each recurrent step, each Transformer position. A model
        without an embedding overrides this (the count models keep counts per label).
        """
        site = self.label_site()
        self.label_emb = nn.Parameter(torch.zeros(len(labels), site.weight.size(1), device=site.weight.device))
        site.register_forward_hook(self.add_label)
        self.labels = list(labels)

    def add_label(self, site: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor:
        """Forward hook of the label site: each row's label vector added at every position of its output."""
        e = self.label_vectors()  # (B, C)
        return out + e.view(e.size(0), *[1] * (out.dim() - 2), e.size(1))

    def label_vectors(self) -> torch.Tensor | float:
        """The label vector of each row being read (n, C), or 0 unlabelled: what a model that reads its
        embedding's weight directly (not through wte's forward) adds itself."""
        return self.label_emb[self.label_ids] if self.labels else 0.0

    def label_site(self) -> nn.Module:
        """The module whose output gets the label vector: the character embedding."""
        if not isinstance(getattr(self, "wte", None), nn.Module):
            raise ModelConfigError(f"{type(self).__name__} has no character embedding (wte) to add a label to; "
                                   f"it cannot learn labels yet")
        return self.wte

    @contextlib.contextmanager
    def reading(self, label_ids: torch.Tensor):
        """Within: the model reads inputs without a label column, as rows of these labels."""
        table, key = _READING.__dict__, id(self)  # per thread: a server reads one model from many at once
        saved = table.get(key, _NOTHING)
        table[key] = label_ids
        try:
            yield
        finally:
            if saved is _NOTHING:
                del table[key]
            else:
                table[key] = saved

    def __call__(self, idx, *args, **kwargs):
        if not self.labels or id(self) in _READING.__dict__:
            return super().__call__(idx, *args, **kwargs)
        with self.reading(idx[:, 0]):  # a labelled batch: the first column is each row's label id
            return super().__call__(idx[:, 1:], *args, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.parameters(), self.buffers())).device

    @property
    def context_limit(self) -> int | None:
        """Most positions (start token included) the model can read in one sequence; None: no limit."""
        return None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
        """Mean cross-entropy over real targets (padding, -1, is skipped)."""
        if targets is None:
            return None
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    def examples(self, split):
        """The split as examples: len(), width (targets per example) and get(rows) -> (inputs, targets)."""
        raise NotImplementedError

    def init_state(self, n: int) -> Any:
        """Generation state of n fresh words, before the start token is read."""
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Read one token per row (n,): logits (n, V) for the next one, and the new state."""
        raise NotImplementedError

    def keep(self, state: Any, rows: torch.Tensor) -> Any:
        """The state of the rows still generating (rows index the current batch)."""
        return keep_rows(state, rows)

    def fit(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        """Count models: fit from every (context (M, block_size), target (M,)) pair of the train split."""
        raise NotImplementedError

    def num_params(self) -> int:
        """Learned numbers: parameters, or for a count model its table of probabilities."""
        return sum(p.numel() for p in self.parameters())

    # What the spine asks of a model, so that nothing outside makemore/models/ tests a model's family.

    kind: ClassVar[str] = "model"  # what forward reads: "window" (the previous characters) or "sequence"
    standalone: ClassVar[bool] = True  # one registered type with its own config and checkpoint (a mixture: no)

    @property
    def needs_fit(self) -> bool:
        """Fitted by one counting pass over the train split (fit_split), not trained by gradient descent."""
        return not self.trainable

    def fit_split(self, split) -> None:
        """Fit a count model on every example of the split (the train split), all in one pass."""
        examples = self.examples(split)
        self.fit(*examples.get(torch.arange(len(examples), device=split.x.device)))

    def position_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-character logits (B, T, V) at every position of idx (B, T): items, the start token first."""
        raise NotImplementedError

    def context_width(self, longest: int) -> int:
        """Tokens a fixed-width reader (an exported graph) gives the model, for items up to longest characters."""
        raise NotImplementedError

    def describe(self, model_type: str) -> str:
        """How a run of this model is named: its registered type (a mixture names its parts and weights)."""
        return model_type

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Model]:
        """Eval mode inside (batch norm on its running statistics, no dropout); the mode found, restored after.

        The mode is switched only when needed: switching walks every module, which costs as much as a word.
        """
        was_training = self.training
        if was_training:
            self.eval()
        try:
            yield self
        finally:
            if was_training:
                self.train()


def shrink_head(head: nn.Module, scale: float = 0.1) -> None:
    """Start unconfident: a first loss near ln(V), not a hockey stick (the output layer scaled down, no bias)."""
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.zero_()


carry_labels(Model)


class WindowModel(Model):
    """Reads idx (B, block_size), the previous characters, and returns logits (B, V) for the next one."""

    kind = "window"

    def position_logits(self, idx):
        k = self.block_size  # the window ending at each position, boundary-padded on the left as Split.windows pads
        windows = F.pad(idx, (k - 1, 0)).unfold(1, k, 1)  # (B, T, k)
        return self(windows.reshape(-1, k))[0].view(*idx.shape, -1)

    def context_width(self, longest):
        return self.block_size

    @property
    def block_size(self) -> int:
        """Characters of context the model reads."""
        return getattr(self.config, "block_size", 1)

    def examples(self, split):
        return split.windows(self.block_size)

    def init_state(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.block_size, dtype=torch.long, device=self.device)  # all word boundaries

    def step(self, tokens, state):
        window = torch.cat([state[:, 1:], tokens[:, None]], dim=1)  # the rolling context window
        return self(window)[0], window


class SequenceModel(Model):
    """Reads idx (B, T) and returns logits (B, T, V), one prediction a position; padding targets are -1.

    The default step re-reads the whole prefix; models that carry a state override it.
    """

    kind = "sequence"

    def position_logits(self, idx):
        return self(idx)[0]

    def context_width(self, longest):
        return self.context_limit or longest + 1

    def examples(self, split):
        return split.sequences()

    def init_state(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 0, dtype=torch.long, device=self.device)

    def step(self, tokens, state):
        seq = torch.cat([state, tokens[:, None]], dim=1)
        return self(seq)[0][:, -1], seq


@dataclass
class RecurrentConfig:
    """Options of a recurrent net (rnn, gru, lstm)."""

    n_embd: int = 64
    """Size of each character's embedding."""
    n_embd2: int = 256
    """Size of the hidden state (and of the LSTM's cell) of each layer."""
    n_layer: int = 1
    """Stacked recurrent layers, each reading the hidden states of the one below."""
    dropout: float = 0.0
    """Dropout on each layer's output (between layers and before the output layer)."""

    def problems(self) -> list[str]:
        return sizes_problems(self) + dropout_problems(self)


class RecurrentModel(SequenceModel):
    """A recurrent net: run(idx, state) -> (logits, state) reads a sequence on from a carried state.

    The state starts from learned values (makemore.py's `start`), is carried from each character to the
    next, and generation carries it too: a step is a run of one character.
    """

    Config = RecurrentConfig
    train_defaults = {"lr": 5e-3, "batch_size": 128, "max_steps": 3000, "eval_interval": 500,
                      "weight_decay": 0.01, "schedule": "cosine", "warmup_steps": 200, "grad_clip": 1.0}

    def __init__(self, config: RecurrentConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        self.build(config, vocab_size)  # embedding, layers, start state: the subclass's own parts
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.n_embd2, vocab_size)
        shrink_head(self.head)

    def build(self, config: RecurrentConfig, vocab_size: int) -> None:
        """Create the embedding, the recurrent layers and the learned start state."""
        raise NotImplementedError

    def run(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Logits (B, T, V) of idx (B, T) read from state, and the state after it."""
        raise NotImplementedError

    def forward(self, idx, targets=None):
        logits, _ = self.run(idx, self.init_state(idx.size(0)))
        return logits, self.loss(logits, targets)

    def step(self, tokens, state):
        logits, state = self.run(tokens[:, None], state)
        return logits[:, 0], state
