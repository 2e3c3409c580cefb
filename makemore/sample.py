"""The one sampler: batched generation for every model, one loop over the model's step().

generate() draws words; sample() draws until enough of them meet the constraints (a suffix, a
substring, a pattern, novelty, uniqueness, a length range), within a budget of tries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import torch

from .constrain import Automaton, compile_constraints
from .data import BOUNDARY, Dataset, Vocab
from .labeled import label_prior
from .models import Model
from .output import shorten


class SampleError(ValueError):
    """A sampling request that cannot be served (e.g. a prefix with unknown characters)."""


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """logits (n, V) with -inf outside each row's nucleus: the fewest most likely tokens holding probability top_p."""
    probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)
    before = probs.cumsum(dim=-1) - probs  # mass of the tokens more likely than each; the top token's is 0
    outside = torch.empty_like(before, dtype=torch.bool).scatter_(-1, order, before >= top_p)
    return logits.masked_fill(outside, float("-inf"))


def draw(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
         generator: torch.Generator | None = None, top_p: float | None = None) -> torch.Tensor:
    """One token per row of logits (n, V), from softmax(logits / temperature) cut to the top k, then to the top p."""
    logits = logits.float() if temperature == 1.0 else logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        logits = nucleus(logits, top_p)
    # Gumbel-max: argmax(logits - log E), E ~ Exp(1), draws from softmax(logits) without a softmax
    noise = torch.empty_like(logits).exponential_(generator=generator)
    return (logits - noise.log_()).argmax(dim=-1)  # (n,)


def length_cap(model: Model, max_length: int, prefix: str = "", min_length: int = 0) -> int:
    """max_length cut to what the model can read, after checking the prefix and min_length fit in it."""
    limit = model.context_limit
    if limit is not None:
        if len(prefix) >= limit:
            raise SampleError(f"prefix {shorten(prefix)} has {len(prefix)} characters, but this model reads at most "
                              f"{limit - 1}: use a shorter prefix")
        max_length = min(max_length, limit - 1)
    if len(prefix) > max_length:
        raise SampleError(f"prefix {shorten(prefix)} is longer than the longest word asked for ({max_length}): "
                          f"raise --max-length or shorten the prefix")
    if min_length > max_length:
        raise SampleError(f"--min-length {min_length} is above the longest word the model can give here "
                          f"({max_length}): lower it")
    return max_length


@torch.inference_mode()
def generate_ended(model: Model, vocab: Vocab, num: int, max_length: int, temperature: float = 1.0,
                   top_k: int | None = None, prefix: str = "", generator: torch.Generator | None = None,
                   top_p: float | None = None, min_length: int = 0, batch_size: int = 16_384,
                   automaton=None, labels: torch.Tensor | None = None) -> tuple[list[str], list[bool]]:
    """num words, each starting with prefix, and whether the model ended each one itself.

    A word ends where the model draws the boundary token, which it may not before min_length
    characters. A word not ended within max_length characters (or the most the model reads) is cut
    there and marked unended: one more step tells whether it would have ended. With an automaton
    (constrain.Automaton, accepting the prefix), each step draws only tokens it allows. A labelled
    model needs labels: (num,) the label id of each word.
    """
    unknown = vocab.unknown(prefix)
    if unknown:
        raise SampleError(f"prefix {shorten(prefix)} has characters not in the vocabulary: "
                          f"{shorten(''.join(unknown))}; use only characters of the training data")
    min_length = max(1, min_length)  # an empty item is not a word: the end is never the first token drawn
    max_length = length_cap(model, max_length, prefix, min_length)
    words, ended = [], []
    with model.evaluating():  # batch norm on running statistics: a sample must not depend on its batch-mates
        for start in range(0, num, batch_size):
            rows = None if labels is None else labels[start:start + batch_size]
            w, e = _generate_batch(model, vocab, min(batch_size, num - start), max_length, temperature, top_k,
                                   top_p, min_length, prefix, generator, automaton, rows)
            words += w
            ended += e
    return words, ended


def generate(model: Model, vocab: Vocab, num: int, max_length: int, temperature: float = 1.0,
             top_k: int | None = None, prefix: str = "", generator: torch.Generator | None = None,
             batch_size: int = 16_384, **options) -> list[str]:
    """num words, each starting with prefix, drawn in batches; a word ends at the boundary token.

    A word is cut at max_length characters, or sooner where the model can read no more positions.
    options: top_p, min_length (see generate_ended).
    """
    return generate_ended(model, vocab, num, max_length, temperature, top_k, prefix, generator,
                          batch_size=batch_size, **options)[0]


def _generate_batch(model, vocab, n, max_length, temperature, top_k, top_p, min_length, prefix, generator,
                    automaton=None, labels=None):
    device = model.device
    start = [BOUNDARY] + vocab.encode(prefix)
    state = model.init_state(n, labels=labels)
    for token in start[:-1]:  # read the prefix; only the prediction after its last character is drawn from
        _, state = model.step(torch.full((n,), token, device=device), state)
    tokens = torch.full((n,), start[-1], device=device)
    # one column a character, and one more that only tells whether a word at max_length ends there
    out = torch.zeros(n, max_length - len(prefix) + 1, dtype=torch.long, device=device)
    alive = torch.arange(n, device=device)  # rows still writing; finished words cost nothing more
    if automaton is not None:
        moves = automaton.tensors(device)[0]
        where = torch.full((n,), automaton.walk(prefix), device=device)  # each row's automaton state
    for t in range(out.size(1)):
        logits, state = model.step(tokens, state)  # (a, V)
        if len(prefix) + t < min_length:  # too short to end yet
            logits = logits.index_fill(1, torch.zeros(1, dtype=torch.long, device=device), float("-inf"))
        if automaton is not None:
            logits = automaton.mask(logits, where)
        tokens = draw(logits, temperature, top_k, generator, top_p)  # (a,)
        if automaton is not None:
            where = moves[where, tokens]
        out[alive, t] = tokens
        going = (tokens != BOUNDARY).nonzero().squeeze(1)
        if len(going) < len(alive):
            if len(going) == 0:
                break
            alive, tokens, state = alive[going], tokens[going], model.keep(state, going)
            if automaton is not None:
                where = where[going]
    words, ended = [], []
    for ids in out.tolist():
        end = ids.index(BOUNDARY) if BOUNDARY in ids else len(ids)
        words.append(prefix + vocab.decode(ids[: min(end, len(ids) - 1)]))
        ended.append(end < len(ids))
    return words, ended


def draw_labels(prior: torch.Tensor | None, n: int, generator: torch.Generator | None) -> torch.Tensor | None:
    """n label ids drawn from a prior (label_prior), or None for an unlabelled model."""
    return None if prior is None else torch.multinomial(prior, n, replacement=True, generator=generator)


def tag(words: list[str], train: set[str], heldout: set[str]) -> list[str]:
    """Where each word comes from: 'train', 'dev/test' (held out), or 'new'."""
    return ["train" if w in train else "dev/test" if w in heldout else "new" for w in words]


def generate_tagged(model: Model, data: Dataset, num: int, generator: torch.Generator,
                    max_length: int | None = None, **options) -> list[tuple[str, str]]:
    """generate() on a dataset's vocabulary, each word paired with its origin tag (see tag); a labelled model's
    words come from labels drawn by their train frequencies."""
    labels = draw_labels(label_prior(data, model.device), num, generator)
    words = generate(model, data.vocab, num, max_length or 2 * data.max_item_length, generator=generator,
                     labels=labels, **options)
    train, heldout = data.item_sets
    return list(zip(words, tag(words, train, heldout)))


# --- constrained sampling -----------------------------------------------------------------------------------------

REASONS = ("too long", "no match", "not novel", "duplicate")  # why a drawn word was rejected, in the order checked
ROUTES = ("mask", "reject")  # constraints kept while drawing, or checked on finished words


@dataclass
class SampleStats:
    """What a sample() call drew: origins of every drawn word, and why the rejected ones were rejected."""

    requested: int
    tries: int
    drawn: int = 0
    origins: Counter = field(default_factory=Counter)  # 'new', 'train', 'dev/test' over every drawn word
    repeats: int = 0  # drawn words equal to a word drawn before them
    rejected: Counter = field(default_factory=Counter)  # by REASONS
    kept: int = 0
    constrain: str = "reject"  # the route the word constraints took: "mask" (kept while drawing) or "reject"
    labels: list[int] | None = None  # the label id of each word kept, for a labelled model

    @property
    def novelty(self) -> float:
        """Share of drawn words found in no split of the training file."""
        return self.origins["new"] / self.drawn if self.drawn else float("nan")

    @property
    def complete(self) -> bool:
        return self.kept == self.requested

    def summary(self) -> str:
        """One line: what was drawn (and how much of it is new), kept and rejected, and why."""
        line = (f"drew {self.drawn}: {self.origins['new']} new ({100 * self.novelty:.1f}%), "
                f"{self.origins['train']} in train, {self.origins['dev/test']} in dev/test, {self.repeats} repeats; "
                f"kept {self.kept}")
        why = ", ".join(f"{self.rejected[r]} {r}" for r in REASONS if self.rejected[r])
        return line + (f", rejected {sum(self.rejected.values())} ({why})" if why else "")

    def shortfall(self) -> str:
        """The one-line message of a budget that ran out."""
        why = ", ".join(f"{self.rejected[r]} {r}" for r in REASONS if self.rejected[r])
        return (f"the budget of {self.tries} tries ran out with {self.kept} of {self.requested} words found "
                f"(rejected: {why or 'none'}); loosen the constraints or raise --tries")

    def to_dict(self) -> dict:
        return {"requested": self.requested, "tries": self.tries, "drawn": self.drawn, "kept": self.kept,
                "new": self.origins["new"], "train": self.origins["train"], "dev/test": self.origins["dev/test"],
                "novelty": self.novelty, "repeats": self.repeats,
                "rejected": {r: self.rejected[r] for r in REASONS}, "complete": self.complete,
                "constrain": self.constrain}


def default_tries(num: int) -> int:
    """The budget of drawn words when none is given: a hundred a word asked for, at least ten thousand."""
    return max(10_000, 100 * num)


def sample(model: Model, data: Dataset, num: int, generator: torch.Generator, *, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, prefix: str = "", suffix: str = "",
           contains: str = "", regex: str | None = None, match: str | None = None, min_length: int = 1,
           max_length: int | None = None, novel: bool = False, unique: bool = False, tries: int | None = None,
           constrain: str = "mask", batch_size: int = 16_384,
           label_weights: torch.Tensor | None = None) -> tuple[list[str], list[str], SampleStats]:
    """Up to num words that meet every constraint, their origin tags, and what was drawn to find them.

    min_length is enforced while drawing (the word may not end before it). The word constraints (the
    suffix, the substring, a full match of `match`, max_length) are one automaton (constrain.py): with
    constrain="mask" each step draws only characters after which the word can still meet them (the
    model renormalized step by step, not the exact conditional distribution), with "reject" the
    model's words are drawn freely and those that miss are rejected (exact, but a rare constraint takes
    many draws). Either way rejected are: words the model has not ended within max_length characters
    (without max_length, words are cut at twice the longest item instead), words without a match of the
    regex (re.search), found in the training file (novel), or drawn already (unique). Drawing stops
    after `tries` words (default_tries); stats.complete tells whether num were found. A labelled model
    draws each word's label from label_weights (label_prior) first; stats.labels has those of the words kept.
    """
    pattern = compile_regex(regex)
    tries = default_tries(num) if tries is None else tries
    cap = max_length if max_length is not None else 2 * data.max_item_length
    # masked words cannot be cut, only kept short: without max_length, no longer than the longest item
    longest = cap if constrain == "reject" or max_length is not None else data.max_item_length
    automaton = word_constraints(model, data.vocab, prefix, suffix, contains, match, min_length, max_length, longest)
    masked = automaton is not None and constrain == "mask"
    train, heldout = data.item_sets
    stats = SampleStats(num, tries, constrain="mask" if masked else "reject")
    words, kept, seen, word_labels = [], set(), set(), []
    while len(words) < num and stats.drawn < tries:
        need = num - len(words)
        # the first round draws exactly what is asked; later ones what the acceptance so far says is needed
        size = need if stats.drawn == 0 else math.ceil(1.2 * need * stats.drawn / max(1, len(words)))
        size = min(max(size, min(need, 64)), batch_size, tries - stats.drawn)
        labels = draw_labels(label_weights, size, generator)
        drawn, ended = generate_ended(model, data.vocab, size, cap, temperature, top_k, prefix, generator,
                                      top_p, min_length, batch_size, automaton if masked else None, labels)
        for i, (word, origin, done) in enumerate(zip(drawn, tag(drawn, train, heldout), ended)):
            if len(words) == num:  # the rest of the round is surplus: not counted as drawn
                break
            stats.drawn += 1
            stats.origins[origin] += 1
            stats.repeats += word in seen
            seen.add(word)
            if max_length is not None and not done:
                reason = "too long"
            elif not ((automaton is None or automaton.accepts(word)) and (pattern is None or pattern.search(word))):
                reason = "no match"
            elif novel and origin != "new":
                reason = "not novel"
            elif unique and word in kept:
                reason = "duplicate"
            else:
                words.append(word)
                kept.add(word)
                word_labels.append(None if labels is None else int(labels[i]))
                continue
            stats.rejected[reason] += 1
    stats.kept = len(words)
    stats.labels = word_labels if label_weights is not None else None
    return words, tag(words, train, heldout), stats


def word_constraints(model: Model, vocab: Vocab, prefix: str, suffix: str, contains: str, match: str | None,
                     min_length: int, max_length: int | None, cap: int) -> Automaton | None:
    """The automaton of the word constraints, checked before any model step; None when there are none."""
    if not (suffix or contains or match or max_length is not None):
        return None
    min_length = max(1, min_length)  # as generate_ended draws: never the empty word
    return compile_constraints(vocab, match=match, suffix=suffix, contains=contains, prefix=prefix,
                               min_length=min_length, max_length=length_cap(model, cap, prefix, min_length))


def compile_regex(regex: str | None) -> re.Pattern | None:
    if regex is None or regex == "":
        return None
    try:
        return re.compile(regex)
    except (re.error, RecursionError, OverflowError) as e:  # deep nesting overflows the compiler
        raise SampleError(f"--regex {shorten(regex)} is not a valid regular expression: {e}") from None
