"""The course's gradient check (`makemore check --gradients`): a hand-written backward against autograd,
tensor by tensor, as the course's cmp() does."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace

import torch

from .. import config as C
from ..data import Dataset
from ..models import MODELS, Model
from ..runs import setup
from .common import GRADIENT_TOLERANCE, CheckResult, random_batch


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
