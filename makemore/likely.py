"""The exact most likely words: a best-first search over prefixes, a batch of the frontier per model step.

A word's probability is the product of its characters' and its end's, each at most 1, so a word is never
more likely than any of its prefixes. Expanding prefixes most likely first therefore finishes words in
order of probability: a finished word taken from the top of the frontier is more likely than every word
not yet finished, and the first N taken are the N most likely, exactly. The constraints (an automaton,
see constrain.py) only prune prefixes no allowed word starts with, so the order stays exact among the
words that meet them.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from .constrain import Automaton, compile_constraints
from .data import BOUNDARY, Dataset
from .models import Model
from .sample import compile_regex, length_cap

DEFAULT_BUDGET = 100_000  # prefixes expanded
MEMORY = 1 << 30  # bytes of model states and frontier entries held at once
ENTRY_BYTES = 200  # a frontier entry: a heap tuple and its prefix string
SKIPS = ("not novel", "no match")  # why a finished word was passed over: in the data (novel), or misses --regex


class SearchError(ValueError):
    """A most-likely search that found no word within its budget."""


@dataclass
class SearchStats:
    """What a most-likely search did: words found, prefixes expanded, and why it stopped short, if it did."""

    requested: int
    budget: int
    expanded: int = 0  # prefixes whose next-character distribution the model computed
    kept: int = 0  # words found (in order of probability)
    frontier: int = 0  # most prefixes and words waiting at once
    skipped: Counter = field(default_factory=Counter)  # finished words passed over, by SKIPS
    stopped: str | None = None  # None (all found), "budget", "memory" or "exhausted" (fewer words exist)

    @property
    def complete(self) -> bool:
        return self.kept == self.requested

    def summary(self) -> str:
        skipped = ", ".join(f"{self.skipped[s]} {s}" for s in SKIPS if self.skipped[s])
        return (f"most likely: found {self.kept} of {self.requested} words, exact, in order; expanded "
                f"{self.expanded:,} prefixes (budget {self.budget:,}), at most {self.frontier:,} waiting"
                + (f"; passed over {skipped}" if skipped else ""))

    def shortfall(self) -> str:
        why = {"budget": f"the budget of {self.budget:,} prefixes expanded ran out; raise --budget",
               "memory": f"the search reached its memory limit ({MEMORY >> 20} MiB); lower -n or add constraints",
               "exhausted": "no other word meets the constraints"}[self.stopped]
        return f"the search stopped with {self.kept} of {self.requested} words (the most likely, in order): {why}"

    def to_dict(self) -> dict:
        return {"requested": self.requested, "kept": self.kept, "complete": self.complete, "budget": self.budget,
                "expanded": self.expanded, "frontier": self.frontier, "stopped": self.stopped,
                "skipped": {s: self.skipped[s] for s in SKIPS}}


def cat_rows(states: list[Any]) -> Any:
    """States of the same structure joined along their rows (keep_rows' inverse).

    A leaf that is one object in every state (a model's per-call constants, as WaveNet's levels) stays
    shared; so do non-tensor leaves, which agree between states of the same length.
    """
    first = states[0]
    if dataclasses.is_dataclass(first):  # e.g. a labelled model's state: its labels beside the model's own
        return type(first)(**{f.name: cat_rows([getattr(s, f.name) for s in states])
                              for f in dataclasses.fields(first)})
    if all(s is first for s in states) or not isinstance(first, (torch.Tensor, tuple, list, dict)):
        return first
    if isinstance(first, torch.Tensor):
        return torch.cat(states, dim=0)
    if isinstance(first, dict):
        return {k: cat_rows([s[k] for s in states]) for k in first}
    return type(first)(cat_rows(list(parts)) for parts in zip(*states))


def state_bytes(state: Any) -> int:
    if isinstance(state, torch.Tensor):
        return state.nelement() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, (tuple, list)):
        return sum(state_bytes(v) for v in state)
    if dataclasses.is_dataclass(state):
        return sum(state_bytes(getattr(state, f.name)) for f in dataclasses.fields(state))
    return 0


@dataclass
class Prefix:
    """A frontier entry not yet finished: its text, the automaton's state, and where its model state is."""

    text: str
    token: int  # its last token, not yet read by the model
    where: int  # automaton state after the text
    chunk: int  # the expansion whose model state it continues (row `row` of it)
    row: int


class Search:
    """One best-first search; run() returns the words, their log-probabilities and the stats."""

    def __init__(self, model: Model, data: Dataset, num: int, automaton: Automaton, *, novel: bool = False,
                 pattern=None, budget: int | None = None, batch_size: int = 64, memory: int = MEMORY):
        self.model, self.data, self.num, self.automaton = model, data, num, automaton
        self.novel, self.pattern, self.batch_size, self.memory = novel, pattern, batch_size, memory
        self.stats = SearchStats(num, DEFAULT_BUDGET if budget is None else budget)
        self.heap: list = []  # (-logprob, order, Prefix | finished word str)
        self.order = itertools.count()  # ties go to the entry pushed first: the search is deterministic
        self.chunks: dict[int, list] = {}  # expansion -> [model state, entries still using it, bytes]
        self.chunk_ids = itertools.count(1)  # 0 is the root
        self.held = 0  # bytes of the model states in self.chunks
        self.best: list[float] = []  # log-probabilities of the num most likely words finished so far (a min-heap)
        self.seen = set().union(*data.item_sets) if novel else set()
        self.moves, self.allowed = automaton.tensors(model.device)

    @property
    def threshold(self) -> float:
        """A prefix less likely than this cannot beat the num words already finished."""
        return self.best[0] if len(self.best) == self.num else float("-inf")

    def push(self, logprob: float, entry: Prefix | str) -> None:
        heapq.heappush(self.heap, (-logprob, next(self.order), entry))

    def finish(self, word: str, logprob: float) -> None:
        """A word the model ended: onto the frontier, unless the search must pass it over."""
        reason = ("not novel" if self.novel and word in self.seen
                  else "no match" if self.pattern is not None and not self.pattern.search(word) else None)
        if reason:
            self.stats.skipped[reason] += 1
            return
        self.push(logprob, word)
        heapq.heappush(self.best, logprob)
        if len(self.best) > self.num:
            heapq.heappop(self.best)

    def release(self, chunk: int) -> None:
        entry = self.chunks[chunk]
        entry[1] -= 1
        if entry[1] == 0:
            self.held -= entry[2]
            del self.chunks[chunk]

    def start(self, prefix: str, labels: torch.Tensor | None) -> None:
        """The root: the prefix read by the model, with its log-probability."""
        model, device = self.model, self.model.device
        state = model.init_state(1) if labels is None else model.init_state(1, labels=labels)
        tokens = [BOUNDARY] + self.data.vocab.encode(prefix)
        logprob = 0.0
        for token, following in zip(tokens, tokens[1:]):
            logits, state = model.step(torch.tensor([token], device=device), state)
            logprob += logits.float().log_softmax(dim=-1)[0, following].item()
        self.chunks[0] = [state, 1, state_bytes(state)]
        self.held = self.chunks[0][2]
        self.push(logprob, Prefix(prefix, tokens[-1], self.automaton.walk(prefix), 0, 0))

    def run(self) -> tuple[list[str], list[float], SearchStats]:
        words, logprobs, stats = [], [], self.stats
        while len(words) < self.num:
            if not self.heap:
                stats.stopped = "exhausted"
                break
            if isinstance(self.heap[0][2], str):  # a finished word at the top: the next most likely
                neg, _, word = heapq.heappop(self.heap)
                words.append(word)
                logprobs.append(-neg)
                continue
            room = stats.budget - stats.expanded
            if room <= 0:
                stats.stopped = "budget"
                break
            if self.held + ENTRY_BYTES * len(self.heap) > self.memory:
                stats.stopped = "memory"
                break
            batch = []  # the most likely prefixes, up to the first finished word: none of them can follow it
            while self.heap and len(batch) < min(room, self.batch_size) and not isinstance(self.heap[0][2], str):
                neg, _, prefix = heapq.heappop(self.heap)
                if -neg < self.threshold:  # queued before the num-th word was found: it cannot beat it
                    self.release(prefix.chunk)
                else:
                    batch.append((-neg, prefix))
            if batch:
                self.expand(batch)
            stats.frontier = max(stats.frontier, len(self.heap))
        stats.kept = len(words)
        return words, logprobs, stats

    def expand(self, batch: list[tuple[float, Prefix]]) -> None:
        """One model step for each prefix of the batch (one call per prefix length), and their children queued."""
        by_length: dict[int, list] = {}
        for logprob, p in batch:
            by_length.setdefault(len(p.text), []).append((logprob, p))
        for group in by_length.values():
            self.expand_group(group)
            self.stats.expanded += len(group)

    def expand_group(self, group: list[tuple[float, Prefix]]) -> None:
        """One model step for prefixes of one length: their states gathered from the expansions they continue."""
        model, device = self.model, self.model.device
        group.sort(key=lambda e: e[1].chunk)  # the rows of the gathered state, chunk by chunk
        parts = []
        for chunk, entries in itertools.groupby(group, key=lambda e: e[1].chunk):
            rows = torch.tensor([p.row for _, p in entries], device=device)
            parts.append(model.keep(self.chunks[chunk][0], rows))
            for _ in range(len(rows)):
                self.release(chunk)
        prefixes = [p for _, p in group]
        logits, state = model.step(torch.tensor([p.token for p in prefixes], device=device), cat_rows(parts))
        parent = torch.tensor([lp for lp, _ in group], dtype=torch.float64, device=device)
        where = torch.tensor([p.where for p in prefixes], device=device)
        # float64 sums, so that words whose probabilities differ little still come in the right order
        scores = logits.float().log_softmax(dim=-1).double() + parent[:, None]
        scores = scores.masked_fill(~self.allowed[where], float("-inf"))
        # a word of probability 0 is never among the most likely; nor anything below the num-th word found
        keep = (scores > float("-inf")) & (scores >= self.threshold)
        r, t = keep.nonzero(as_tuple=True)
        values, nxt = scores[r, t].tolist(), self.moves[where[r], t].tolist()
        chunk = next(self.chunk_ids)
        children = 0
        for row, token, value, w in zip(r.tolist(), t.tolist(), values, nxt):
            text = prefixes[row].text
            if token == BOUNDARY:
                self.finish(text, value)
            elif value >= self.threshold:  # (finishing a word above may have raised it)
                self.push(value, Prefix(text + self.data.vocab.chars[token - 1], token, w, chunk, row))
                children += 1
        if children:
            size = state_bytes(state)
            self.chunks[chunk] = [state, children, size]
            self.held += size


def most_likely(model: Model, data: Dataset, num: int, *, prefix: str = "", suffix: str = "", contains: str = "",
                match: str | None = None, regex: str | None = None, min_length: int = 1,
                max_length: int | None = None, novel: bool = False, budget: int | None = None,
                labels: torch.Tensor | None = None) -> tuple[list[str], list[float], SearchStats]:
    """The num most likely words (of one character or more) that meet the constraints, as sample() takes them.

    Without max_length, words are at most twice the longest item (or what the model reads). The
    constraints are checked before any model step.
    """
    cap = length_cap(model, max_length if max_length is not None else 2 * data.max_item_length, prefix, min_length)
    automaton = compile_constraints(data.vocab, match=match, suffix=suffix, contains=contains, prefix=prefix,
                                    min_length=max(1, min_length), max_length=cap)
    return search(model, data, num, automaton, prefix=prefix, novel=novel, pattern=compile_regex(regex),
                  budget=budget, labels=labels)


@torch.inference_mode()
def search(model: Model, data: Dataset, num: int, automaton: Automaton, *, prefix: str = "",
                novel: bool = False, pattern=None, budget: int | None = None, labels: torch.Tensor | None = None,
                batch_size: int = 64) -> tuple[list[str], list[float], SearchStats]:
    """The num most likely words the automaton accepts (it holds the prefix and the length bounds), most likely
    first, with their log-probabilities (nats, the end included) and what the search did.

    novel passes over words in any split of the data; pattern (a compiled re) over words it is not found
    in. The search stops after `budget` prefixes expanded (DEFAULT_BUDGET), or at the memory limit, with
    the words found so far (still the most likely, in order); with none found it raises SearchError.
    labels: (1,) label id for a labelled model's init_state.
    """
    with model.evaluating():  # batch norm must use running statistics
        search = Search(model, data, num, automaton, novel=novel, pattern=pattern, budget=budget,
                        batch_size=batch_size)
        search.start(prefix, labels)
        words, logprobs, stats = search.run()
    if not words:
        if stats.stopped == "exhausted":
            raise SearchError("no word meets the constraints (every word that does was passed over: --novel or "
                              "--regex); loosen them")
        raise SearchError(f"the most-likely search found no word within {stats.expanded:,} prefixes expanded "
                          f"(stopped: {stats.stopped}); raise --budget or loosen the constraints")
    return words, logprobs, stats
