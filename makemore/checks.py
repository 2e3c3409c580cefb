"""Sanity checks before spending hours on a run, for any registered model:

- initial loss: the first loss should be near ln(vocabulary size), the loss of a uniform guess;
  far above it the model starts confidently wrong (the course's "hockey stick");
- overfit one batch: the model and optimizer can drive the loss on one small batch to near zero
  (exactly: to the batch's own floor, which is above zero only when identical contexts have
  different next characters);
- causality: changing a later character leaves every earlier prediction unchanged, checked through
  the same encoding and windows that training uses;
- batch independence: in eval mode a prediction does not depend on the rest of the batch (batch
  norm must use its running statistics there); it also catches `view` where `permute` was meant,
  which mixes examples (and positions) of a batch.

The course's other common mistakes, each a check of its own:

- train/eval mode: a model with batch norm or dropout computes differently in the two modes, and
  the evaluation runs in eval mode and hands the model back in the mode it found it in;
- zero_grad: two identical training steps give the optimizer the same gradient, not twice it;
- softmaxed outputs: the model returns logits, not probabilities (the loss applies softmax itself);
- bias before batch norm: no layer adds a bias that the batch norm right after subtracts again.

check_gradients (`makemore check --gradients`) compares a hand-written backward pass (model.backward:
manual) with autograd, tensor by tensor, as the course's cmp() does.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace

import torch

from . import config as C
from .data import PAD, Dataset, Split, Vocab, encode_items
from .device import precision
from .evaluate import split_nll
from .models import MODELS, Model
from .runs import setup
from .train import Batches, make_optimizer, train_step

INITIAL_LOSS_SLACK = 0.1  # warn when the first loss is more than 10% above ln(V)
OVERFIT_TOLERANCE = 0.05  # nats above the batch's floor that still count as "near zero"
MATCH_TOLERANCE = 1e-4  # |difference| of logits, relative to their scale, that counts as equal
GRADIENT_TOLERANCE = 1e-6  # largest |manual - autograd| gradient entry that still counts as a match
PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| below which a row of outputs looks like probabilities


@dataclass
class CheckResult:
    """One check's outcome: 'pass', 'warn', 'fail' or 'skip', with the numbers behind it."""

    name: str
    status: str
    detail: str


def _batch_norm_layers(model: Model) -> int:
    return sum(1 for m in model.modules() if "batchnorm" in type(m).__name__.lower())


def _same(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, float]:
    """Whether two logit tensors agree to MATCH_TOLERANCE of their scale, and their largest difference."""
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    scale = 1.0 + a.float().abs().max().item() if a.numel() else 1.0
    return math.isfinite(diff) and diff <= MATCH_TOLERANCE * scale, diff


def random_batch(split: Split, model: Model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n random training examples, drawn exactly as the training loop draws them."""
    return Batches(split, model, n, seed).next()


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
    was_training = model.training
    model.eval()
    base, other = position_logits(model, items, data.vocab), position_logits(model, changed, data.vocab)
    model.train(was_training)
    worst, bad = 0.0, []
    for (i, k), logits in zip(cases, other):
        ok, diff = _same(base[i][: k + 1], logits[: k + 1])
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
    was_training = model.training
    model.eval()
    whole = model(x)[0]
    alone = torch.cat([model(x[i:i + 1])[0] for i in range(len(x))])
    flipped = model(x.flip(0))[0].flip(0)
    model.train(was_training)
    ok1, d1 = _same(whole, alone)
    ok2, d2 = _same(whole, flipped)
    norms = _batch_norm_layers(model)
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
        loss_t = train_step(model, model, optimizer, x, y, tc.grad_clip, autocast)
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


def run_checks(model: Model, data: Dataset, train_cfg: C.TrainConfig, overfit_steps: int = 1000) -> list[CheckResult]:
    """Every check, on an untrained model (count models are fitted first); the last one trains the model."""
    if not model.trainable:
        examples = model.examples(data.train)
        model.fit(*examples.get(torch.arange(len(examples), device=data.train.x.device)))
    checks = [("initial loss", lambda: check_initial_loss(model, data)),
              ("causality", lambda: check_causality(model, data)),
              ("batch independence", lambda: check_batch_independence(model, data)),
              ("train/eval mode", lambda: check_train_eval_mode(model, data)),
              ("softmaxed outputs", lambda: check_softmaxed_outputs(model, data)),
              ("bias before BN", lambda: check_bias_before_batch_norm(model, data)),
              ("zero_grad", lambda: check_zero_grad(model, data, train_cfg)),
              ("overfit one batch", lambda: check_overfit(model, data, train_cfg, steps=overfit_steps))]
    return [_guarded(name, check) for name, check in checks]


def _guarded(name: str, check) -> CheckResult:
    """A check that raises has found a problem too: report it as a failure, with the error."""
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - any error in a model's forward or backward is the finding
        return CheckResult(name, "fail", f"raised {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def check_config(cfg: C.Config, overfit_steps: int = 1000, write=print) -> tuple[Model, list[CheckResult]]:
    """Build cfg's data and untrained model, then run every check on them."""
    data, model = setup(cfg, warn=write)
    return model, run_checks(model, data, cfg.train, overfit_steps)


# The course's common mistakes beyond the four checks above, and the hand-written backward against autograd.

@contextmanager
def _untouched(model: Model):
    """Whatever a check does inside, the model's weights, buffers and mode, and torch's RNG, come back as they were."""
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    saved, training = [t.detach().clone() for t in tensors], model.training
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for t, s in zip(tensors, saved):
                t.copy_(s)
        model.train(training)


def _is_batch_norm(module: torch.nn.Module) -> bool:
    """A batch norm: torch's, the course's, or any class derived from one."""
    return any("batchnorm" in c.__name__.lower() for c in type(module).__mro__)


def _first_examples(model: Model, split: Split, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    examples = model.examples(split)
    return examples.get(torch.arange(min(n, len(examples)), device=split.x.device))


def _mode_dependent(model: Model) -> list[str]:
    """Layers that compute differently in train and eval mode: batch norms, and dropout when it is on."""
    found = [f"{name} ({type(m).__name__})" for name, m in model.named_modules()
             if _is_batch_norm(m) or (isinstance(m, torch.nn.Dropout) and m.p > 0)]
    if not found and getattr(model.config, "dropout", 0) > 0:  # dropout applied functionally (e.g. in attention)
        found.append(f"dropout {model.config.dropout:g}")
    return found


def check_train_eval_mode(model: Model, data: Dataset, evaluate: Callable[[Model, Split], float] = split_nll,
                          n: int = 32) -> CheckResult:
    """With batch norm or dropout: the two modes differ, and evaluate() runs in eval mode and restores the mode."""
    name = "train/eval mode"
    layers = _mode_dependent(model)
    if not layers:
        return CheckResult(name, "skip", "no batch norm or dropout: train and eval mode compute the same")
    x, _ = _first_examples(model, data.dev, n)
    with _untouched(model), torch.no_grad():
        model.train()
        in_train = model(x)[0]
        model.eval()
        in_eval, again = model(x)[0], model(x)[0]
    with _untouched(model):  # the evaluation of a model left in eval mode, and of one left in train mode
        model.eval()
        from_eval = evaluate(model, data.dev)
    with _untouched(model):
        model.train()
        from_train = evaluate(model, data.dev)
        stays_training = model.training
    same, d_modes = _same(in_train, in_eval)
    steady, d_again = _same(in_eval, again)
    detail = (f"{len(layers)} such layer{'s' if len(layers) != 1 else ''} (e.g. {layers[0]}): logits differ by up to "
              f"{d_modes:.1e} between train and eval mode; dev NLL {from_eval:.4f} evaluated from eval mode, "
              f"{from_train:.4f} from train mode")
    if same:
        return CheckResult(name, "fail", detail + ": the forward ignores self.training (batch norm must use batch "
                           "statistics in training and running estimates in eval)")
    if not steady:
        return CheckResult(name, "fail", detail + f": two eval-mode passes differ by {d_again:.1e}; dropout (or "
                           "batch statistics) stays on in eval mode")
    if not math.isclose(from_eval, from_train, rel_tol=1e-6):
        return CheckResult(name, "fail", detail + ": the evaluation runs the model in the mode it finds it in; "
                           "call model.eval() before evaluating")
    if not stays_training:
        return CheckResult(name, "fail", detail + ": the evaluation leaves the model in eval mode, so training "
                           "would go on without batch statistics; call model.train() after evaluating")
    return CheckResult(name, "pass", detail)


@torch.no_grad()
def check_softmaxed_outputs(model: Model, data: Dataset, n: int = 32) -> CheckResult:
    """The model returns logits, not rows of probabilities (non-negative, summing to 1) the loss would softmax again."""
    name = "softmaxed outputs"
    x, y = _first_examples(model, data.dev, n)
    with _untouched(model):
        model.eval()
        logits = model(x)[0].float()
    rows = logits.reshape(-1, logits.size(-1))[y.reshape(-1) != PAD]  # real positions only
    sums = rows.sum(-1)
    detail = f"{len(rows)} rows of outputs, each summing to between {sums.min().item():.4g} and {sums.max().item():.4g}"
    if len(rows) and bool((rows >= 0).all()) and bool(((sums - 1).abs() <= PROBABILITY_TOLERANCE).all()):
        v = model.vocab_size  # softmax of probabilities: at best e^1 against V - 1 times e^0
        return CheckResult(name, "fail", detail + f": every row is probabilities, which the loss softmaxes again "
                           f"(its loss cannot go below ln({v} - 1 + e) - 1 = {math.log(v - 1 + math.e) - 1:.3f}); "
                           "return the logits")
    return CheckResult(name, "pass", detail)


@torch.no_grad()
def check_bias_before_batch_norm(model: Model, data: Dataset, n: int = 32) -> CheckResult:
    """No layer's bias feeds a batch norm directly: the norm subtracts the batch mean, and the bias with it."""
    name = "bias before BN"
    norms = [m for m in model.modules() if _is_batch_norm(m)]
    if not norms:
        return CheckResult(name, "skip", "no batch-norm layers")
    names = {m: f"{k} ({type(m).__name__})" for k, m in model.named_modules()}
    biased, fed = [], {}  # (layer, output) of every layer with a bias, in call order; layer -> the norm it feeds

    def after(module, inputs, out):
        if isinstance(out, torch.Tensor):
            biased.append((module, out))  # kept alive, so no later tensor can reuse its memory

    def before(module, inputs):
        x = inputs[0]
        for layer, out in biased:  # the same memory: the output itself, or a view of it (a flatten, a reshape)
            if out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() and out.numel() == x.numel():
                fed[layer] = module

    hooks = [m.register_forward_hook(after) for m in model.modules()
             if m not in norms and isinstance(getattr(m, "bias", None), torch.nn.Parameter)]
    hooks += [m.register_forward_pre_hook(before) for m in norms]
    try:
        with _untouched(model):
            model.eval()
            model(_first_examples(model, data.dev, n)[0])
    finally:
        for h in hooks:
            h.remove()
    detail = f"{len(norms)} batch-norm layer{'s' if len(norms) != 1 else ''}"
    if fed:
        wasted = sum(layer.bias.numel() for layer in fed)
        layer, norm = next(iter(fed.items()))
        return CheckResult(name, "fail", f"{detail}, {len(fed)} fed by a layer with a bias, e.g. {names[layer]} into "
                           f"{names[norm]}: the norm subtracts the bias again with the batch mean, so {wasted:,} "
                           "parameters are wasted; build those layers with bias=False")
    return CheckResult(name, "pass", detail + ", none fed directly by a layer with a bias")


def check_zero_grad(model: Model, data: Dataset, train_cfg: C.TrainConfig, step: Callable | None = None,
                    n: int | None = None, seed: int = 0) -> CheckResult:
    """Steps on batches A, B, then A again, each from the same weights: A's gradient must come out the same twice.

    step(model, optimizer, x, y) is the training loop's step. Batch B in between matters: after two
    identical steps a forgotten zero_grad leaves twice the gradient, which clipping scales back to
    the first one's size; B's gradient points elsewhere, so the sum does not.
    """
    name = "zero_grad"
    if not model.trainable:
        return CheckResult(name, "skip", "count model: nothing is trained by gradient descent")
    step = step or (lambda m, opt, x, y: train_step(m, m, opt, x, y, train_cfg.grad_clip))
    n = n or (32 if model.examples(data.train).width == 1 else 8)
    a, b = random_batch(data.train, model, n, seed), random_batch(data.train, model, n, seed + 1)
    optimizer = make_optimizer(model, train_cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    seen = []  # the gradients each optimizer step is handed

    def record(*_):
        seen.append([None if p.grad is None else p.grad.detach().clone() for p in params])

    hook = optimizer.register_step_pre_hook(record)
    try:
        with _untouched(model):
            weights = [p.detach().clone() for p in params]
            model.train()
            model.zero_grad(set_to_none=True)
            for i, (x, y) in enumerate((a, b, a)):
                with torch.no_grad():
                    for p, w in zip(params, weights):
                        p.copy_(w)
                torch.manual_seed(seed + i % 2)  # the same dropout masks for A both times
                step(model, optimizer, x, y)
    finally:
        hook.remove()
        model.zero_grad(set_to_none=True)
    if len(seen) != 3:
        return CheckResult(name, "fail", f"three training steps called optimizer.step() {len(seen)} times")
    pairs = [(g, h) for g, h in zip(seen[0], seen[2]) if g is not None or h is not None]
    if not pairs or any(g is None or h is None for g, h in pairs):
        return CheckResult(name, "fail", "the same step twice gave gradients to different parameters")
    norms = [math.sqrt(sum(g.double().square().sum().item() for g in grads)) for grads in zip(*pairs)]
    diff = max((h - g).abs().max().item() for g, h in pairs)
    scale = max(g.abs().max().item() for g, _ in pairs)
    detail = (f"batch A, batch B, batch A again, from the same weights: A's gradient norm {norms[0]:.4g}, then "
              f"{norms[1]:.4g} ({norms[1] / norms[0] if norms[0] else float('nan'):.3f}x), max |difference| {diff:.1e}")
    if math.isfinite(diff) and diff <= MATCH_TOLERANCE * scale:
        return CheckResult(name, "pass", detail)
    return CheckResult(name, "fail", detail + ": gradients accumulate across steps; call optimizer.zero_grad() "
                       "before loss.backward() in every step")


@dataclass
class GradientRow:
    """One row of the course's cmp(): a tensor's gradient by hand against autograd's."""

    name: str
    exact: bool  # torch.equal
    approximate: bool  # torch.allclose at its default tolerances
    maxdiff: float

    @property
    def ok(self) -> bool:
        return self.exact or self.maxdiff <= GRADIENT_TOLERANCE


def has_manual_backward(model: Model) -> bool:
    """Whether the model's config offers backward: manual (hand-written gradients)."""
    return is_dataclass(model.config) and "backward" in {f.name for f in fields(model.config)}


def _gradients(model: Model, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """One training-mode forward and backward: the gradient of the logits, each layer's output and each parameter.

    In backward order: logits first, then each layer's output and parameters from the last layer to the first.
    """
    calls = []  # (name, layer, output) of every leaf layer, in call order

    def keep(name):
        def hook(module, inputs, out):
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.retain_grad()
                calls.append((name, module, out))
        return hook

    leaves = [(k, m) for k, m in model.named_modules() if k and next(m.children(), None) is None]
    hooks = [m.register_forward_hook(keep(k)) for k, m in leaves]
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        logits, loss = model(x, y)
        logits.retain_grad()
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    grads = {"logits": logits.grad}
    for name, module, out in reversed(calls):
        if out is not logits:
            grads.setdefault(f"{name} output ({type(module).__name__})", out.grad)
        for k, p in module.named_parameters(prefix=name, recurse=False):
            grads.setdefault(k, p.grad)
    for k, p in reversed(list(model.named_parameters())):  # layers the forward did not call as modules
        grads.setdefault(k, p.grad)
    return grads


def _compare(name: str, got: torch.Tensor | None, expected: torch.Tensor | None) -> GradientRow:
    if got is None or expected is None or got.shape != expected.shape:
        return GradientRow(name, False, False, math.inf)
    return GradientRow(name, torch.equal(got, expected), torch.allclose(got, expected),
                       (got - expected).abs().max().item() if got.numel() else 0.0)


def check_gradients(model: Model, data: Dataset, train_cfg: C.TrainConfig,
                    seed: int = 0) -> tuple[CheckResult, list[GradientRow]]:
    """The hand-written backward against autograd on one training batch from the same weights, tensor by tensor."""
    name = "manual backward"
    if not has_manual_backward(model):
        have = [k for k, cls in MODELS.items() if is_dataclass(cls.Config)
                and "backward" in {f.name for f in fields(cls.Config)}]
        return CheckResult(name, "skip", f"{type(model).__name__} has no hand-written backward (model.backward: "
                           f"manual exists for {', '.join(have)})"), []
    cls, device = type(model), model.device
    auto = cls(replace(model.config, backward="autograd"), model.vocab_size, model.max_length).to(device)
    manual = cls(replace(model.config, backward="manual"), model.vocab_size, model.max_length).to(device)
    auto.load_state_dict(model.state_dict())
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():  # as the course does: gains and biases off their 1 and 0, where a wrong formula could hide
        for p in auto.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen, device=device, dtype=p.dtype))
    manual.load_state_dict(auto.state_dict())
    x, y = random_batch(data.train, auto, train_cfg.batch_size, seed)
    expected, got = _gradients(auto, x, y), _gradients(manual, x, y)
    rows = [_compare(k, got[k], g) for k, g in expected.items() if k in got and (g is not None or got[k] is not None)]
    worst = max((r.maxdiff for r in rows), default=0.0)
    detail = (f"{len(rows)} tensors, a batch of {len(x)}: {sum(r.exact for r in rows)} exact, max difference "
              f"{worst:.1e} (tolerance {GRADIENT_TOLERANCE:g})")
    bad = [r for r in rows if not r.ok]
    if bad:  # the first one going backward is where a wrong formula starts; the rest inherit it
        return CheckResult(name, "fail", f"{detail}: {len(bad)} differ, first (going backward) {bad[0].name} by "
                           f"{bad[0].maxdiff:.1e}: its layer's hand-written backward is wrong"), rows
    return CheckResult(name, "pass", detail), rows


def check_gradients_config(cfg: C.Config, write=print) -> tuple[Model, CheckResult, list[GradientRow]]:
    """Build cfg's data and untrained model, then compare its hand-written backward with autograd."""
    data, model = setup(cfg, warn=write)
    return model, *check_gradients(model, data, cfg.train, cfg.seed)
