"""The course's common mistakes, a check each: train/eval mode, softmaxed outputs, bias before batch norm,
zero_grad."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .. import config as C
from ..data import PAD, Dataset, Split
from ..evaluate import split_nll
from ..models import Model
from ..train import make_optimizer, train_step
from .common import (
    MATCH_TOLERANCE,
    PROBABILITY_TOLERANCE,
    CheckResult,
    first_examples,
    is_batch_norm,
    logits_match,
    random_batch,
    untouched,
)


def _mode_dependent(model: Model) -> list[str]:
    """Layers that compute differently in train and eval mode: batch norms, and dropout when it is on."""
    found = [f"{name} ({type(m).__name__})" for name, m in model.named_modules()
             if is_batch_norm(m) or (isinstance(m, torch.nn.Dropout) and m.p > 0)]
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
    x, _ = first_examples(model, data.dev, n)
    with untouched(model), torch.no_grad():
        model.train()
        in_train = model(x)[0]
        model.eval()
        in_eval, again = model(x)[0], model(x)[0]
    with untouched(model):  # the evaluation of a model left in eval mode, and of one left in train mode
        model.eval()
        from_eval = evaluate(model, data.dev)
    with untouched(model):
        model.train()
        from_train = evaluate(model, data.dev)
        stays_training = model.training
    same, d_modes = logits_match(in_train, in_eval)
    steady, d_again = logits_match(in_eval, again)
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
    x, y = first_examples(model, data.dev, n)
    with untouched(model):
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
    norms = [m for m in model.modules() if is_batch_norm(m)]
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
        with untouched(model):
            model.eval()
            model(first_examples(model, data.dev, n)[0])
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
    step = step or (lambda m, opt, x, y: train_step(m, m, opt, x, y, grad_clip=train_cfg.grad_clip))
    n = n or (32 if model.examples(data.train).width == 1 else 8)
    a, b = random_batch(data.train, model, n, seed), random_batch(data.train, model, n, seed + 1)
    optimizer = make_optimizer(model, train_cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    seen = []  # the gradients each optimizer step is handed

    def record(*_):
        seen.append([None if p.grad is None else p.grad.detach().clone() for p in params])

    hook = optimizer.register_step_pre_hook(record)
    try:
        with untouched(model):
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
