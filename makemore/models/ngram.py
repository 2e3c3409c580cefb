"""The count model of any order N: interpolated Kneser-Ney or Witten-Bell n-grams, fitted by counting.

Every order k = 1..N is kept as a sparse table: for each context of k-1 characters seen in
training, the discounted probabilities alpha(w | h) of the characters seen after it and the
mass gamma(h) left for the next lower order. Interpolation happens at lookup time:

    P_k(w | h) = alpha_k(w | h) + gamma_k(h) * P_{k-1}(w | h minus its first character)

with P_0 uniform, and P_k = P_{k-1} for a context never seen. Without interpolation, order N alone
gives add-k estimates over the N-grams of the items left-padded with N-1 boundaries (uniform for a
context never seen). Fitting and lookup are vectorized:
contexts get exact integer ids, order by order (the id of a context of k-1 characters is the
rank of (id of its last k-2 characters) * V + its first character), found by torch.unique on
fit and by searchsorted on lookup, so there is no per-character Python anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .base import ModelConfigError, WindowModel

BOUNDARY = 0  # the word-boundary token: contexts at a word's start are left-padded with it

# per order k: sorted context keys (C,), backoff masses (C,), seen n-grams as context rank * V + next
# character (E,), and their discounted probabilities (E,)
TABLES = ("keys", "gamma", "grams", "alpha")


@dataclass
class NgramConfig:
    """Options of the n-gram model."""

    n: int = 6
    """Order N: predict a character from the N-1 before it (1 to 10)."""
    method: Literal["kneser-ney", "witten-bell"] = "kneser-ney"
    """Interpolated smoothing: modified Kneser-Ney (absolute discounts, continuation counts) or Witten-Bell."""
    discount: float | None = None
    """Kneser-Ney: one fixed discount in (0, 1] for every count; None estimates three per order (D1, D2, D3+)."""
    interpolate: bool = True
    """Blend each order with the lower ones; false uses order N alone with add-k smoothing."""
    smoothing: float = 1.0
    """Without interpolation: add-k, k added to every count (as the bigram's smoothing)."""
    label_weight: float = 0.7
    """Labelled data: P(next | context, label) is this much of the label's own n-grams, the rest the pooled ones."""

    def problems(self) -> list[str]:
        out = [] if 0 <= self.label_weight <= 1 else [f"model.label_weight must be in [0, 1], got {self.label_weight}"]
        if not 1 <= self.n <= 10:
            out.append(f"model.n must be between 1 and 10, got {self.n}")
        if self.discount is not None and not 0 < self.discount <= 1:
            out.append(f"model.discount must be in (0, 1] or null (estimated), got {self.discount}")
        if self.smoothing < 0:
            out.append(f"model.smoothing must not be negative, got {self.smoothing}")
        return out


def _rank(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct sorted keys, each input's rank among them, and how often each occurs."""
    return torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)


def _discounts(cnt: torch.Tensor, fixed: float | None) -> torch.Tensor:
    """(D1, D2, D3+) of modified Kneser-Ney, from the counts of counts (Chen & Goodman 1998)."""
    if fixed is not None:
        return torch.full((3,), fixed, dtype=torch.float64)
    n = torch.bincount(cnt.clamp(max=5), minlength=6)[1:5].double().cpu()  # n1..n4
    y = n[0] / (n[0] + 2 * n[1]).clamp(min=1)
    d = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) - torch.arange(2, 5) * y * n[1:] / n[:3].clamp(min=1)
    # a discount must stay within its count (so alpha >= 0) and above zero (so unseen characters get mass)
    return torch.maximum(torch.minimum(d, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
                         torch.tensor(1e-3, dtype=torch.float64))


class Ngram(WindowModel):
    """Interpolated n-gram of order N over characters; fitted by one counting pass, no optimizer."""

    Config = NgramConfig
    trainable = False

    def __init__(self, config: NgramConfig, vocab_size: int, max_length: int | None = None):
        problems = config.problems()
        if problems:
            raise ModelConfigError("; ".join(problems))
        super().__init__(config, vocab_size, max_length)
        for k in range(1, config.n + 1):  # empty until fitted: every context unseen, so P is uniform
            for name in TABLES:
                dtype = torch.float32 if name in ("gamma", "alpha") else torch.long
                self.register_buffer(f"{name}{k}", torch.zeros(0, dtype=dtype))
        self._dense = None  # the interpolated distribution of every seen context, built on first use

    @property
    def block_size(self) -> int:
        return max(1, self.config.n - 1)  # a unigram reads one character and ignores it: windows need one

    def _orders(self) -> range:
        return range(1, self.config.n + 1) if self.config.interpolate else range(self.config.n, self.config.n + 1)

    def _table(self, k: int) -> list[torch.Tensor]:
        return [getattr(self, f"{name}{k}") for name in TABLES]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # table sizes depend on the data: take the saved shapes before the values are copied in
        for name, buf in self._buffers.items():
            saved = state_dict.get(prefix + name)
            if isinstance(saved, torch.Tensor) and saved.shape != buf.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=buf.dtype, device=buf.device)
        self._dense = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def num_params(self) -> int:
        """Stored probabilities: one alpha per seen (context, character) and one gamma per seen context."""
        own = sum(getattr(self, f"{name}{k}").numel() for k in self._orders() for name in ("gamma", "alpha"))
        return own + sum(part.num_params() for part in getattr(self, "parts", []))

    def attach_labels(self, labels: list[str]) -> None:
        """One n-gram a label beside the pooled one (this model), blended by config.label_weight."""
        self.parts = torch.nn.ModuleList(Ngram(self.config, self.vocab_size, self.max_length) for _ in labels)
        self.labels = list(labels)

    def label_probs(self, idx: torch.Tensor) -> torch.Tensor:
        """P(next | context, label) of each row: its label's n-gram blended with the pooled one."""
        probs = self.probs(idx)
        w = self.config.label_weight
        for label, part in enumerate(self.parts):
            rows = (self.label_ids == label).nonzero().flatten()
            if len(rows):
                probs[rows] = w * part.probs(idx[rows]) + (1 - w) * probs[rows]
        return probs

    @torch.no_grad()
    def fit(self, contexts: torch.Tensor, targets: torch.Tensor) -> None:
        c = self.config
        v, n = self.vocab_size, c.n
        self._dense = None
        grams = torch.cat([contexts[:, contexts.size(1) - (n - 1):], targets[:, None]], dim=1)  # (M, N)
        kn = c.method == "kneser-ney" and c.interpolate
        rows = torch.arange(len(grams), device=grams.device)  # the windows order k counts
        ctx_id = torch.zeros(len(grams), dtype=torch.long, device=grams.device)  # order 1: the empty context
        ctx_keys = torch.zeros(1, dtype=torch.long, device=grams.device)
        keep = None
        prev = None  # order k-1, kept until its continuation counts (from order k's n-grams) are known
        for k in range(1, n + 1):
            if k > 1:
                if c.interpolate:
                    # a word's start is one boundary: a context padded with two or more says no more than the
                    # one with one, so order k skips it (and lookups of it fall back to the shorter context);
                    # order N alone has no shorter context to fall back to, so it keeps every padded context
                    keep = (grams[rows, n - k] != BOUNDARY) | (grams[rows, n - k + 1] != BOUNDARY)
                    rows, ctx_id = rows[keep], ctx_id[keep]
                # this order's context: the previous one with one more character on the left
                ctx_keys, ctx_id, _ = _rank(ctx_id * v + grams[rows, n - k])
            types, gram_id, counts = _rank(ctx_id * v + grams[rows, -1])  # sorted by (context, next)
            if prev is not None and kn:
                # continuation count of a lower n-gram: how many distinct characters precede it; one that
                # starts at the word boundary has nothing before it, so it keeps its raw count (as KenLM)
                suffix = torch.empty(len(types), dtype=torch.long, device=grams.device)
                suffix[gram_id] = prev["gram_id"][keep]
                cont = torch.bincount(suffix, minlength=len(prev["counts"]))
                prev["counts"] = torch.where(cont > 0, cont, prev["counts"])
            if prev is not None:
                self._store(k - 1, **prev)
            prev = {"ctx_keys": ctx_keys, "types": types, "counts": counts, "gram_id": gram_id}
        self._store(n, **prev)
        for label, part in enumerate(getattr(self, "parts", [])):
            rows = (self.label_ids == label).nonzero().flatten()
            part.fit(contexts[rows], targets[rows])

    def _store(self, k: int, ctx_keys, types, counts, gram_id=None) -> None:
        """Discounted probabilities and backoff masses of order k from its n-gram types and counts."""
        c, v = self.config, self.vocab_size
        self.register_buffer(f"keys{k}", ctx_keys)  # every order's contexts: the ids of longer ones build on them
        if k not in self._orders():
            return
        ctx = types // v  # each n-gram's context rank
        cnt = counts.double()
        total = torch.bincount(ctx, weights=cnt, minlength=len(ctx_keys))  # c(h)
        distinct = torch.bincount(ctx, minlength=len(ctx_keys)).double()  # N1+(h .)
        if not c.interpolate:  # add-k: (c + k) / (c(h) + kV) = c / (c(h) + kV) + [kV / (c(h) + kV)] / V
            denom = (total + c.smoothing * v).clamp(min=1e-300)
            alpha, gamma = cnt / denom[ctx], c.smoothing * v / denom
        elif c.method == "witten-bell":
            denom = total + distinct
            alpha, gamma = cnt / denom[ctx], distinct / denom
        else:
            d = _discounts(counts, c.discount).to(cnt.device)[counts.clamp(max=3) - 1]  # D(count) per type
            alpha = (cnt - d).clamp(min=0) / total[ctx]
            gamma = torch.bincount(ctx, weights=cnt.minimum(d), minlength=len(ctx_keys)) / total
        for name, value in zip(TABLES[1:], (gamma.float(), types, alpha.float())):
            self.register_buffer(f"{name}{k}", value)

    def _tables(self) -> tuple[torch.Tensor, dict[int, int]]:
        """All interpolated P(next | context) rows, cached: (1 + seen contexts, V), and where each order starts.

        Row 0 is uniform (no context seen). The sparse tables are what is learned and saved; these
        dense rows make a lookup one gather. A context's parent (itself without its first character)
        is its key // V, by construction of the keys.
        """
        device = self.keys1.device
        if self._dense is None or self._dense[0].device != device:
            v = self.vocab_size
            uniform = torch.full((1, v), 1.0 / v, device=device)
            prev, rows, start = uniform, [uniform], {}
            for k in self._orders():
                keys, gamma, grams, alpha = self._table(k)
                lower = prev[keys // v] if self.config.interpolate else uniform  # (C, V) or (1, V)
                table = gamma[:, None] * lower  # (C, V) the mass handed down, spread as the lower order says
                table.view(-1).index_add_(0, grams, alpha)  # plus each seen n-gram's own discounted share
                start[k] = sum(len(r) for r in rows)
                rows.append(table)
                prev = table
            self._dense = (torch.cat(rows), start)
        return self._dense

    def probs(self, idx: torch.Tensor) -> torch.Tensor:
        """P(next | context) for each row of idx (B, block_size): (B, V), every row summing to 1."""
        n, v = self.config.n, self.vocab_size
        table, start = self._tables()
        row = torch.zeros(idx.size(0), dtype=torch.long, device=idx.device)  # the table row to read; 0: uniform
        found = torch.ones(idx.size(0), dtype=torch.bool, device=idx.device)
        ctx_id = torch.zeros(idx.size(0), dtype=torch.long, device=idx.device)
        for k in range(1, n + 1):
            keys = getattr(self, f"keys{k}")
            if not len(keys):
                break  # not fitted yet
            if k > 1:  # extend the context one character to the left, as fit numbered them
                key = ctx_id * v + idx[:, idx.size(1) - k + 1]
                ctx_id = torch.searchsorted(keys, key).clamp(max=len(keys) - 1)
                found &= keys[ctx_id] == key
            if k in start:  # the longest context seen in training decides; a longer unseen one adds nothing
                row = torch.where(found, start[k] + ctx_id, row)
        return table[row]  # (B, V)

    def forward(self, idx, targets=None):
        logits = (self.label_probs(idx) if self.labels else self.probs(idx)).log()  # (B, V) normalized logits
        return logits, self.loss(logits, targets)
