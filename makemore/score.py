"""How likely words are under a model: per word and per character, counted exactly as eval counts a split."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from .data import Dataset, Split, encode_items
from .evaluate import EVAL_BATCH, target_nlls
from .labeled import label_prior
from .models import Model
from .output import shorten
from .sample import tag

LN2 = math.log(2)


EMPTY = ("an empty word has no characters to score: give words of one character or more (blank lines of a "
         "--file or of standard input are skipped, as training skips them)")


class ScoreError(ValueError):
    """Words that cannot be scored: characters outside the vocabulary, or longer than the model reads."""


@dataclass
class Score:
    """One word's figures: surprisal (nats) of each of its characters, then of the end of the word."""

    word: str
    surprisal: list[float]
    origin: str = "new"  # where the word is in the run's data: 'train', 'dev/test' or 'new'

    @property
    def targets(self) -> int:
        """Predictions counted: each character and the end of the word."""
        return len(self.surprisal)

    @property
    def logprob(self) -> float:
        """Log-probability of the whole word, end included, in nats."""
        return -math.fsum(self.surprisal)

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood per character (end included), in nats: eval's unit."""
        return -self.logprob / self.targets

    @property
    def bpc(self) -> float:
        return self.nll / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)

    @property
    def probs(self) -> list[float]:
        """Probability of each character given the ones before it, then of the end."""
        return [math.exp(-s) for s in self.surprisal]

    def to_dict(self, chars: bool = False) -> dict:
        out = {"word": self.word, "nll": self.nll, "bpc": self.bpc, "logprob": self.logprob,
               "perplexity": self.perplexity, "targets": self.targets, "origin": self.origin}
        if chars:  # the end of the word is the last entry, its char null
            out["chars"] = [{"char": c, "p": p, "bits": s / LN2}
                            for c, p, s in zip([*self.word, None], self.probs, self.surprisal)]
        return out

    def __repr__(self) -> str:
        return (f"Score({self.word!r}: {self.nll:.4f} nats/char, {self.bpc:.4f} bits/char, log p {self.logprob:.3f}, "
                f"perplexity {self.perplexity:.2f}, {self.origin})")


def problems(model: Model, data: Dataset, words: list[str]) -> dict[str, str]:
    """Each word that cannot be scored, with why."""
    limit = model.context_limit
    out = {}
    for w in words:
        unknown = data.vocab.unknown(w)
        if not w:
            out[w] = EMPTY
        elif unknown:
            out[w] = f"{shorten(''.join(unknown))} not in the vocabulary"
        elif limit is not None and len(w) + 1 > limit:
            out[w] = f"longer than the {limit - 1} characters this model reads"
    return out


def problems_message(bad: dict[str, str]) -> str:
    """One line naming the words that cannot be scored (the first few) and what to do."""
    if list(bad) == [""]:
        return EMPTY
    named = "; ".join(f"{shorten(w)}: {why}" for w, why in list(bad.items())[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"cannot score {len(bad)} word(s): {named}{more}; remove them or pass --skip-unknown to skip them"


@torch.inference_mode()
def surprisals(model: Model, data: Dataset, words: list[str], label: int | None = None,
               batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The surprisal (nats) of every character of the words and each word's end, concatenated, float64; a
    labelled model's under one label id."""
    x, y = encode_items(words, data.vocab)
    labels = None if label is None else torch.full((len(words),), label, device=model.device)
    split = Split("score", list(words), x.to(model.device), y.to(model.device), labels)
    with model.evaluating():
        return torch.cat(list(target_nlls(model, split, batch_size)))


def label_surprisals(model: Model, data: Dataset, words: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every label's surprisals (L, targets), and the log prior of the labels (L,) from their train frequencies."""
    per_label = torch.stack([surprisals(model, data, words, i) for i in range(len(data.labels))])
    return per_label.cpu(), label_prior(data).log()


def word_spans(words: list[str]) -> list[tuple[int, int]]:
    """Where each word's targets (its characters and its end) start and end in the concatenated surprisals."""
    ends = list(itertools.accumulate(len(w) + 1 for w in words))
    return [(end - len(w) - 1, end) for w, end in zip(words, ends)]


def score_words(model: Model, data: Dataset, words: list[str], label: int | None = None,
                batch_size: int = EVAL_BATCH) -> list[Score]:
    """Every word's surprisal per character, through the same examples, forward pass and float64 sums as eval.

    Scoring a split's items in their order reproduces its eval NLL (the batches are the very same). A
    labelled model scores under one label id, or with label None under the mixture of every label by
    train frequency: each character's surprisal is then the mixture's, given the characters before it.
    """
    bad = problems(model, data, words)
    if bad:
        raise ScoreError(problems_message(bad))
    if not words:
        return []
    if data.labels and label is None:
        per_label, prior = label_surprisals(model, data, words)
        nll = []
        for start, end in word_spans(words):
            # log P(first t characters) under the mixture, t = 0..n: the log-sum over labels of prior x likelihood
            cum = torch.cat([torch.zeros(len(prior), 1, dtype=torch.float64), -per_label[:, start:end].cumsum(1)], 1)
            mix = torch.logsumexp(prior[:, None] + cum, dim=0)
            nll += (mix[:-1] - mix[1:]).tolist()
    else:
        nll = surprisals(model, data, words, label, batch_size).tolist()
    origins = tag(words, *data.item_sets)
    return [Score(w, nll[start:end], origin) for w, origin, (start, end) in zip(words, origins, word_spans(words))]


def classify(model: Model, data: Dataset, words: list[str]) -> list[dict[str, float]]:
    """P(label | word) of each word by Bayes: prior (train frequency) x P(word | label), normalized; likeliest first."""
    bad = problems(model, data, words)
    if bad:
        raise ScoreError(problems_message(bad))
    if not words:
        return []
    per_label, prior = label_surprisals(model, data, words)
    logliks = torch.stack([-per_label[:, start:end].sum(1) for start, end in word_spans(words)], dim=1)  # (L, words)
    posterior = (prior[:, None] + logliks).softmax(dim=0)
    return [dict(sorted(zip(data.labels, column), key=lambda kv: -kv[1])) for column in posterior.T.tolist()]


def total(scores: list[Score]) -> dict:
    """The figures of all words together: mean NLL per character over every prediction, as eval reports a split."""
    targets = sum(s.targets for s in scores)
    nll = math.fsum(x for s in scores for x in s.surprisal) / targets if targets else float("nan")
    return {"words": len(scores), "targets": targets, "nll": nll, "bpc": nll / LN2}


# --- terminal rendering -----------------------------------------------------------------------------------------

BARS = " ▁▂▃▄▅▆▇█"
END = "⏎"  # the end of the word, a prediction like any character


def bar(bits: float, vocab_size: int) -> str:
    """A bar as high as the surprise: full at twice the bits of a uniform guess (p = 1/V^2) and beyond."""
    full = 2 * math.log2(vocab_size)
    return BARS[min(len(BARS) - 1, math.ceil(bits / full * (len(BARS) - 1)))]


def colour(text: str, bits: float, vocab_size: int) -> str:
    """text on a background from green (expected) through yellow to red (surprising), for a terminal."""
    level = min(1.0, bits / (2 * math.log2(vocab_size)))
    red, green = (int(255 * min(1.0, 2 * level)), int(255 * min(1.0, 2 * (1 - level))))
    return f"\x1b[48;2;{red};{green};60m\x1b[30m{text}\x1b[0m"


def table(scores: list[Score]) -> list[str]:
    """One line a word: NLL per character in nats and bits, total log-probability, perplexity, origin."""
    width = max([4, *(len(s.word) for s in scores)])
    lines = [f"{'word':{width}s}  nats/char  bits/char      log p  perplexity  origin"]
    for s in scores:
        lines.append(f"{s.word:{width}s}  {s.nll:9.4f}  {s.bpc:9.4f}  {s.logprob:9.3f}  {s.perplexity:10.2f}  "
                     f"{s.origin}")
    return lines


def char_lines(score: Score, vocab_size: int, tty: bool = False) -> list[str]:
    """Each character with its probability, its surprise in bits and a bar as high as the surprise.

    On a terminal the characters are also coloured by surprise, so the unexpected one stands out.
    """
    chars = [*score.word, END]
    bits = [s / LN2 for s in score.surprisal]
    cells = [colour(f"{c:>7s}", b, vocab_size) if tty else f"{c:>7s}" for c, b in zip(chars, bits)]
    return ["  char " + "".join(cells),
            "  p    " + "".join(f"{p:7.4f}" for p in score.probs),
            "  bits " + "".join(f"{b:7.2f}" for b in bits),
            "       " + "".join(f"{bar(b, vocab_size):>7s}" for b in bits)]
