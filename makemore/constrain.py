"""Constraints on whole words as one deterministic automaton, kept while generating.

--match (a full match of a regular expression, compiled by interegular), --suffix, --contains, the
length bounds and the vocabulary are each a finite automaton; their intersection accepts exactly the
words that meet them all. While a word is written, a character is allowed only where it leads to a
state from which an accepting state can still be reached, and the end of the word only in an
accepting state: every word drawn meets the constraints. Since the length bounds are part of the
automaton (its states count characters up to the longest word), "an accepting state is reachable"
already means "within the characters left".
"""

from __future__ import annotations

import re
from collections import deque

import interegular
import torch
from interegular.fsm import FSM, Alphabet, anything_else

from .data import Vocab
from .output import shorten


class ConstraintError(ValueError):
    """Constraints no word can meet, or a --match pattern that cannot be compiled."""


REGEX_ERRORS = (interegular.InvalidSyntax, interegular.Unsupported, ValueError, KeyError, IndexError, RecursionError)


def regex_fsm(regex: str) -> FSM:
    """interegular's automaton of a regular expression (full-match semantics); ValueError when it cannot compile."""
    try:
        return interegular.parse_pattern(regex).to_fsm()
    except REGEX_ERRORS as e:
        why = str(e).strip() or type(e).__name__
        raise ValueError(why) from None


def match_problem(regex: str) -> str | None:
    """Why a --match pattern cannot be compiled, or None."""
    try:
        regex_fsm(regex)
    except ValueError as e:
        return f"{shorten(regex)} is not a regular expression interegular can compile ({e}); fix the pattern"
    return None


def length_fsm(chars: list[str], min_length: int, max_length: int) -> FSM:
    """Words of min_length..max_length characters of the vocabulary: state i has read i characters."""
    alphabet = Alphabet.from_groups(set(chars), {anything_else})
    ids = range(max_length + 1)
    return FSM(alphabet=alphabet, states=set(ids), initial=0, finals=set(range(min_length, max_length + 1)),
               map={i: ({alphabet[chars[0]]: i + 1} if i < max_length else {}) for i in ids})


class Automaton:
    """A DFA over the vocabulary's tokens: each state's next state for every token, which tokens it allows."""

    def __init__(self, fsm: FSM, vocab: Vocab):
        self.vocab = vocab
        symbols = [fsm.alphabet[c] for c in vocab.chars]
        index, order, queue = {fsm.initial: 0}, [fsm.initial], deque([fsm.initial])
        nxt: list[list[int | None]] = []
        while queue:  # number the states reachable from the start over the vocabulary's characters
            s = queue.popleft()
            row = [None]  # the end token leads nowhere: the word is finished
            for sym in symbols:
                t = fsm.map.get(s, {}).get(sym)
                if t is not None and t not in index:
                    index[t] = len(order)
                    order.append(t)
                    queue.append(t)
                row.append(None if t is None else index[t])
            nxt.append(row)
        self.accepting = [s in fsm.finals for s in order]
        self.live = self._live(nxt)
        dead = len(order)  # one extra state, with nothing allowed: where every impossible move goes
        self.next = [[dead if t is None or not self.live[t] else t for t in row] for row in nxt] + [[dead] * vocab.size]
        self.allowed = [[self.accepting[s]] + [t != dead for t in self.next[s][1:]] for s in range(dead)]
        self.allowed.append([False] * vocab.size)
        self.start = 0
        self._tensors: dict = {}

    def _live(self, nxt: list[list[int | None]]) -> list[bool]:
        """Whether an accepting state can be reached from each state: a backward search from the accepting ones."""
        back: list[list[int]] = [[] for _ in nxt]
        for s, row in enumerate(nxt):
            for t in row:
                if t is not None:
                    back[t].append(s)
        live = list(self.accepting)
        queue = deque(s for s, a in enumerate(live) if a)
        while queue:
            for s in back[queue.popleft()]:
                if not live[s]:
                    live[s] = True
                    queue.append(s)
        return live

    @property
    def empty(self) -> bool:
        """No word is accepted."""
        return not self.live[self.start]

    @property
    def states(self) -> int:
        return len(self.next) - 1

    def walk(self, text: str, state: int | None = None) -> int:
        """The state after reading text (the dead state if it leaves the live ones)."""
        state = self.start if state is None else state
        for token in self.vocab.encode(text):
            state = self.next[state][token]
        return state

    def alive(self, state: int) -> bool:
        return state < self.states and self.live[state]

    def accepts(self, word: str) -> bool:
        if self.vocab.unknown(word):
            return False
        state = self.walk(word)
        return self.alive(state) and self.accepting[state]

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """next (S+1, V) long and allowed (S+1, V) bool, on device; the last row is the dead state."""
        if device not in self._tensors:
            self._tensors[device] = (torch.tensor(self.next, dtype=torch.long, device=device),
                                     torch.tensor(self.allowed, dtype=torch.bool, device=device))
        return self._tensors[device]

    def mask(self, logits: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """logits (n, V) with -inf at every token the rows' states (n,) do not allow: the model renormalized over them.

        A row whose model gives every allowed token probability 0 draws among them uniformly instead,
        so a word never takes a token that breaks the constraints.
        """
        allowed = self.tensors(logits.device)[1][states]
        out = logits.float().masked_fill(~allowed, float("-inf"))
        stuck = out.amax(dim=-1) == float("-inf")
        if bool(stuck.any()):
            out = torch.where(stuck[:, None] & allowed, torch.zeros_like(out), out)
        return out


def describe(min_length: int, max_length: int) -> str:
    if min_length == max_length:
        return f"exactly {max_length} characters"
    return f"{min_length} to {max_length} characters" if min_length > 1 else f"at most {max_length} characters"


def compile_constraints(vocab: Vocab, *, match: str | None = None, suffix: str = "", contains: str = "",
                        prefix: str = "", min_length: int = 0, max_length: int) -> Automaton:
    """The automaton of the words that meet every constraint; a one-line ConstraintError when none can.

    max_length is the longest word the sampler will write (the caller caps it by what the model reads).
    """
    for flag, text in (("--prefix", prefix), ("--suffix", suffix), ("--contains", contains)):
        unknown = vocab.unknown(text)
        if unknown:
            raise ConstraintError(f"{flag} {shorten(text)} has characters not in the vocabulary: "
                                  f"{shorten(''.join(unknown))}; use only characters of the training data, so some "
                                  f"word can meet it")
    lengths = length_fsm(vocab.chars, min_length, max_length)
    where = f"words of {describe(min_length, max_length)} over the vocabulary"
    parts = []
    if match:
        try:
            parts.append((f"--match {shorten(match)}", regex_fsm(match)))
        except ValueError as e:
            raise ConstraintError(f"--match {shorten(match)} is not a regular expression interegular can compile "
                                  f"({e}); fix the pattern") from None
    if prefix:
        parts.append((f"--prefix {shorten(prefix)}", regex_fsm(re.escape(prefix) + ".*")))
    if suffix:
        parts.append((f"--suffix {shorten(suffix)}", regex_fsm(".*" + re.escape(suffix))))
    if contains:
        parts.append((f"--contains {shorten(contains)}", regex_fsm(".*" + re.escape(contains) + ".*")))
    for name, part in parts:  # name the constraint that no word can meet alone, where there is one
        if Automaton(lengths & part, vocab).empty:
            raise ConstraintError(f"no word can meet {name} among {where}; loosen it or the length bounds")
    automaton = Automaton(FSM.intersection(lengths, *(p for _, p in parts)), vocab)
    if automaton.empty:
        names = " and ".join(n for n, _ in parts)
        raise ConstraintError(f"no word meets {names} together among {where}; loosen one of them")
    return automaton
