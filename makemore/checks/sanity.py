"""The four sanity checks before a long run: initial loss, causality, batch independence, overfit one batch."""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import replace

import torch

from .. import config as C
from ..data import PAD, Dataset, Split, Vocab, encode_items
from ..device import precision
from ..models import Model
from ..train import make_optimizer, train_step
from .common import INITIAL_LOSS_SLACK, OVERFIT_TOLERANCE, CheckResult, is_batch_norm, logits_match, random_batch


def overfit_batch(split: Split, model: Model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples with distinct inputs (so the floor is reachable and low), drawn as training draws them."""
    x, y = random_batch(split, model, 50 * n, seed)
    keep, seen = [], set()
    for i, row in enumerate(x.tolist()):
        if tuple(row) not in seen:
            seen.add(tuple(row))
            keep.append(i)
        if len(keep) == n:
            break
    keep = torch.tensor(keep, device=x.device)
    return x[keep], y[keep]


def loss_floor(x: torch.Tensor, y: torch.Tensor) -> float:
    """The lowest mean loss any model can reach on this batch: the entropy of targets given identical contexts.

    A window example (y of shape (n,)) has its window as context; a whole item (y of shape (n, T))
    has, at each position, everything up to it.
    """
    pairs = []
    for xs, ys in zip(x.tolist(), y.tolist()):
        if isinstance(ys, int):
            pairs.append((tuple(xs), ys))
        else:
            pairs += [(tuple(xs[: t + 1]), yt) for t, yt in enumerate(ys) if yt != PAD]
    contexts, joint = Counter(c for c, _ in pairs), Counter(pairs)
    return max(0.0, -sum(math.log(joint[p] / contexts[p[0]]) for p in pairs) / len(pairs))  # no -0.0


@torch.no_grad()
def check_initial_loss(model: Model, data: Dataset, batch_size: int = 512, seed: int = 0) -> CheckResult:
    """The untrained model's loss on a training batch against ln(V)."""
    name = "initial loss"
    if not model.trainable:
        return CheckResult(name, "skip", "count model: fitted by counting, it has no initialization to check")
    x, y = random_batch(data.train, model, batch_size, seed)
    model.train()  # as the first training step sees it
    loss = model(x, y)[1].item()
    expected = math.log(model.vocab_size)
    detail = f"{loss:.4f} vs ln({model.vocab_size}) = {expected:.4f} ({100 * (loss / expected - 1):+.1f}%)"
    if not math.isfinite(loss) or loss > expected * (1 + INITIAL_LOSS_SLACK):
        return CheckResult(name, "warn", detail + ": the model starts confidently wrong; scale down the "
                           "output layer's initial weights (and zero its bias)")
    return CheckResult(name, "pass", detail)


@torch.no_grad()
def position_logits(model: Model, items: list[str], vocab: Vocab) -> list[torch.Tensor]:
    """Each item's predictions at every position, (len + 1, V), through the training encoding and examples."""
    x, y = encode_items(items, vocab)
    examples = model.examples(Split("check", items, x.to(model.device), y.to(model.device)))
    x, y = examples.get(torch.arange(len(examples), device=model.device))
    logits = model(x)[0]
    real = logits.reshape(-1, logits.size(-1))[y.reshape(-1) != PAD]  # item by item, position by position
    return list(real.split([len(s) + 1 for s in items]))


def check_causality(model: Model, data: Dataset, num_items: int = 8) -> CheckResult:
    """Change characters k.. of real items: predictions at positions 0..k must not change."""
    name = "causality"
    chars = data.vocab.chars
    if len(chars) < 2:
        return CheckResult(name, "skip", "the vocabulary has one character: nothing to change it to")
    swap = {c: chars[(i + 1) % len(chars)] for i, c in enumerate(chars)}
    items = [s for s in data.train.items if len(s) >= 2][:num_items]
    cases = [(i, k) for i, s in enumerate(items) for k in range(len(s))]
    changed = [items[i][:k] + "".join(swap[c] for c in items[i][k:]) for i, k in cases]
    with model.evaluating():
        base, other = position_logits(model, items, data.vocab), position_logits(model, changed, data.vocab)
    worst, bad = 0.0, []
    for (i, k), logits in zip(cases, other):
        ok, diff = logits_match(base[i][: k + 1], logits[: k + 1])
        worst = max(worst, diff)
        if not ok:
            bad.append((items[i], k))
    detail = f"{len(cases)} changes in {len(items)} items: max |change| of earlier logits {worst:.1e}"
    if bad:
        word, k = bad[0]
        return CheckResult(name, "fail", f"{detail}; e.g. changing {word!r} from character {k} on changes the "
                           f"prediction of character {k} or earlier: the model sees the future")
    return CheckResult(name, "pass", detail)


@torch.no_grad()
def check_batch_independence(model: Model, data: Dataset, n: int = 32) -> CheckResult:
    """In eval mode: the batch at once, one example at a time, and reversed, give the same logits."""
    name = "batch independence"
    examples = model.examples(data.dev)
    x = examples.get(torch.arange(min(n, len(examples)), device=data.dev.x.device))[0]
    with model.evaluating():
        whole = model(x)[0]
        alone = torch.cat([model(x[i:i + 1])[0] for i in range(len(x))])
        flipped = model(x.flip(0))[0].flip(0)
    ok1, d1 = logits_match(whole, alone)
    ok2, d2 = logits_match(whole, flipped)
    norms = sum(1 for m in model.modules() if is_batch_norm(m))
    detail = (f"eval mode, {len(x)} examples: max |change| {max(d1, d2):.1e} between the batch and one at a time "
              f"or reversed ({norms} batch-norm layer{'s' if norms != 1 else ''})")
    if ok1 and ok2:
        return CheckResult(name, "pass", detail)
    return CheckResult(name, "fail", detail + ": predictions depend on the batch; batch norm must use its "
                       "running statistics in eval mode")


def check_overfit(model: Model, data: Dataset, train_cfg: C.TrainConfig, n: int | None = None, steps: int = 1000,
                  seed: int = 0) -> CheckResult:
    """Train on one fixed small batch (the config's optimizer and rate, no decay) until the loss nears its floor."""
    name = "overfit one batch"
    if not model.trainable:
        return CheckResult(name, "skip", "count model: nothing is trained by gradient descent")
    examples = model.examples(data.train)
    n = n or (32 if examples.width == 1 else 8)  # windows, or whole items
    x, y = overfit_batch(data.train, model, n, seed)
    floor = loss_floor(x.cpu(), y.cpu())
    tc = replace(train_cfg, weight_decay=0.0)
    optimizer = make_optimizer(model, tc)
    autocast = functools.partial(precision, model.device, tc.dtype)  # as training will run
    model.train()
    first = loss = None
    for step in range(1, steps + 1):
        loss_t = train_step(model, model, optimizer, x, y, grad_clip=tc.grad_clip, autocast=autocast)
        if step == 1 or step % 10 == 0:  # a host sync only every few steps
            loss = loss_t.item()
            first = loss if first is None else first
            if not math.isfinite(loss) or loss <= floor + OVERFIT_TOLERANCE:
                break
    what = "windows" if y.dim() == 1 else "items"
    detail = (f"{len(x)} {what}: loss {first:.3f} -> {loss:.4f} in {step} steps (floor {floor:.4f}; "
              f"{tc.optimizer} lr {tc.lr:g})")
    if math.isfinite(loss) and loss <= floor + OVERFIT_TOLERANCE:
        return CheckResult(name, "pass", detail)
    return CheckResult(name, "fail", detail + ": the model cannot fit even one batch; look for a bug in the "
                       "forward pass, a too small or too large learning rate, or frozen parameters")
