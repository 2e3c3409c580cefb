"""The one sampler: batched generation for every model, with temperature, top-k and a prefix."""

from __future__ import annotations

import torch

from .data import BOUNDARY, Dataset, Vocab
from .models import Model


class SampleError(ValueError):
    """A sampling request that cannot be served (e.g. a prefix with unknown characters)."""


@torch.inference_mode()
def generate(model: Model, vocab: Vocab, num: int, max_length: int, temperature: float = 1.0,
             top_k: int | None = None, prefix: str = "", generator: torch.Generator | None = None,
             batch_size: int = 16_384) -> list[str]:
    """num words, each starting with prefix, drawn in batches; a word ends at the boundary token."""
    unknown = vocab.unknown(prefix)
    if unknown:
        raise SampleError(f"prefix {prefix!r} has characters not in the vocabulary: {''.join(unknown)!r}; "
                          f"use only characters of the training data")
    words = []
    for start in range(0, num, batch_size):
        words += _generate_batch(model, vocab, min(batch_size, num - start), max_length, temperature,
                                 top_k, prefix, generator)
    return words


def _generate_batch(model, vocab, n, max_length, temperature, top_k, prefix, generator):
    was_training = model.training
    if was_training:  # batch norm must use running statistics: a sample must not depend on its batch-mates
        model.eval()  # (only when needed: switching walks every module, which costs as much as a word)
    device = model.device
    start = torch.tensor([BOUNDARY] + vocab.encode(prefix), device=device)
    new = max(0, max_length - len(prefix))
    # the whole sequence so far; a window model reads only its last block_size characters
    seq = torch.cat([start.expand(n, -1), start.new_zeros(n, new)], dim=1)  # (n, 1 + P + new)
    if model.kind == "window":
        seq = torch.cat([seq.new_zeros(n, model.block_size - 1), seq], dim=1)
    pos = seq.size(1) - new
    alive = torch.arange(n, device=device)  # rows still writing; finished words cost nothing more
    for t in range(pos, seq.size(1)):
        if model.kind == "window":
            logits, _ = model(seq[alive, t - model.block_size:t])  # (a, block_size) -> (a, V)
        else:
            logits = model(seq[alive, :t])[0][:, -1]  # (a, t) -> (a, t, V) -> (a, V)
        logits = logits.float() if temperature == 1.0 else logits.float() / temperature
        if top_k is not None and top_k < logits.size(-1):
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        # Gumbel-max: argmax(logits - log E), E ~ Exp(1), draws from softmax(logits) without a softmax
        noise = torch.empty_like(logits).exponential_(generator=generator)
        nxt = (logits - noise.log_()).argmax(dim=-1)  # (a,)
        seq[alive, t] = nxt
        alive = alive[nxt != BOUNDARY]
        if len(alive) == 0:
            break
    if was_training:
        model.train()
    body = seq[:, pos:].tolist()
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
