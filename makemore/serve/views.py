"""What each endpoint answers, from the Python API alone (Run.sample, Run.score): plain dicts, no HTTP."""

from __future__ import annotations

import dataclasses
import math

from ..api import Run, Samples
from ..score import LN2, total
from .errors import as_keys
from .loading import nll
from .schemas import SampleRequest, ScoreRequest


def run_info(name: str, run: Run) -> dict:
    """A run as /api/runs lists it: type, size, exact NLLs, vocabulary, labels and its own sample defaults."""
    r = run.results
    return {"name": name, "type": run.model_type, "params": run.model.num_params(),
            "train_nll": nll(r, "train"), "dev_nll": nll(r, "dev"), "test_nll": nll(r, "test"),
            "vocab": "".join(run.vocab.chars), "vocab_size": run.vocab.size, "labels": run.labels,
            "context_limit": run.model.context_limit, "sample": dataclasses.asdict(run.sample_config())}


def sample_words(run: Run, req: SampleRequest) -> dict:
    """Words drawn (or searched) with the request's options, each with its origin, NLL and label; the stats."""
    samples = run.sample(req.n, **req.options())
    labels = samples.labels or [None] * len(samples)
    if samples.logprobs is not None:  # the search's own exact figures
        words = [{"word": w, "origin": o, "nll": n, "bpc": n / LN2, "logprob": lp, "prob": math.exp(lp)}
                 for w, o, n, lp in zip(samples, samples.origins, samples.nlls, samples.logprobs)]
    else:
        words = [{"word": s.word, "origin": o, "nll": s.nll, "bpc": s.bpc, "logprob": s.logprob}
                 for s, o in zip(scores_of(run, samples, labels), samples.origins)]
    for word, label in zip(words, labels):
        word["label"] = label
    stats = samples.stats
    return {"words": words, "stats": stats.to_dict(), "complete": stats.complete,
            "message": None if stats.complete else as_keys(stats.shortfall())}


def scores_of(run: Run, samples: Samples, labels: list) -> list:
    """Each drawn word's score, under the label it was drawn with (one score call a label)."""
    out = [None] * len(samples)
    for label in dict.fromkeys(labels):
        at = [i for i, lab in enumerate(labels) if lab == label]
        scores = run.score([samples[i] for i in at], **({} if label is None else {"label": label}))
        for i, s in zip(at, scores):
            out[i] = s
    return out


def score_words(run: Run, req: ScoreRequest) -> dict:
    """Each word's NLL, bits per character, log-probability and per-character probabilities; their total."""
    options = {} if req.label is None else {"label": req.label}
    scores = run.score(req.words, skip_unknown=req.skip_unknown, **options)
    words = [s.to_dict(chars=True) for s in scores]
    if req.labels:
        for word, probs in zip(words, run.classify([s.word for s in scores])):
            word["labels"] = probs  # P(label | word), the likeliest first
    scored = {s.word for s in scores}
    return {"words": words, "total": total(scores), "skipped": [w for w in req.words if w not in scored]}
