"""The one sampler: batched generation for every model, one loop over the model's step()."""

from __future__ import annotations

import torch

from .data import BOUNDARY, Dataset, Vocab
from .models import Model


class SampleError(ValueError):
    """A sampling request that cannot be served (e.g. a prefix with unknown characters)."""


def draw(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of logits (n, V), drawn from softmax(logits / temperature) over the top k."""
    logits = logits.float() if temperature == 1.0 else logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    # Gumbel-max: argmax(logits - log E), E ~ Exp(1), draws from softmax(logits) without a softmax
    noise = torch.empty_like(logits).exponential_(generator=generator)
    return (logits - noise.log_()).argmax(dim=-1)  # (n,)


@torch.inference_mode()
def generate(model: Model, vocab: Vocab, num: int, max_length: int, temperature: float = 1.0,
             top_k: int | None = None, prefix: str = "", generator: torch.Generator | None = None,
             batch_size: int = 16_384) -> list[str]:
    """num words, each starting with prefix, drawn in batches; a word ends at the boundary token.

    A word is cut at max_length characters, or sooner where the model can read no more positions.
    """
    unknown = vocab.unknown(prefix)
    if unknown:
        raise SampleError(f"prefix {prefix!r} has characters not in the vocabulary: {''.join(unknown)!r}; "
                          f"use only characters of the training data")
    limit = model.context_limit
    if limit is not None:
        if len(prefix) >= limit:
            raise SampleError(f"prefix {prefix!r} has {len(prefix)} characters, but this model reads at most "
                              f"{limit - 1}: use a shorter prefix")
        max_length = min(max_length, limit - 1)
    was_training = model.training
    if was_training:  # batch norm must use running statistics: a sample must not depend on its batch-mates
        model.eval()  # (only when needed: switching walks every module, which costs as much as a word)
    try:
        words = []
        for start in range(0, num, batch_size):
            words += _generate_batch(model, vocab, min(batch_size, num - start), max_length, temperature,
                                     top_k, prefix, generator)
    finally:
        if was_training:
            model.train()
    return words


def _generate_batch(model, vocab, n, max_length, temperature, top_k, prefix, generator):
    device = model.device
    start = [BOUNDARY] + vocab.encode(prefix)
    state = model.init_state(n)
    for token in start[:-1]:  # read the prefix; only the prediction after its last character is drawn from
        _, state = model.step(torch.full((n,), token, device=device), state)
    tokens = torch.full((n,), start[-1], device=device)
    out = torch.zeros(n, max(0, max_length - len(prefix)), dtype=torch.long, device=device)
    alive = torch.arange(n, device=device)  # rows still writing; finished words cost nothing more
    for t in range(out.size(1)):
        logits, state = model.step(tokens, state)  # (a, V)
        tokens = draw(logits, temperature, top_k, generator)  # (a,)
        out[alive, t] = tokens
        going = (tokens != BOUNDARY).nonzero().squeeze(1)
        if len(going) < len(alive):
            if len(going) == 0:
                break
            alive, tokens, state = alive[going], tokens[going], model.keep(state, going)
    body = out.tolist()
    return [prefix + vocab.decode(ids[: ids.index(BOUNDARY)] if BOUNDARY in ids else ids) for ids in body]


def generate_tagged(model: Model, data: Dataset, num: int, generator: torch.Generator,
                    max_length: int | None = None, **options) -> list[tuple[str, str]]:
    """generate() on a dataset's vocabulary, each word paired with its origin tag (see tag)."""
    words = generate(model, data.vocab, num, max_length or 2 * data.max_item_length, generator=generator, **options)
    train, heldout = data.item_sets
    return list(zip(words, tag(words, train, heldout)))


def tag(words: list[str], train: set[str], heldout: set[str]) -> list[str]:
    """Where each word comes from: 'train', 'dev/test' (held out), or 'new'."""
    return ["train" if w in train else "dev/test" if w in heldout else "new" for w in words]
