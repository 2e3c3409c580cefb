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

from .. import config as C
from ..data import Dataset
from ..models import Model
from ..runs import setup
from .common import CheckResult, is_batch_norm
from .gradients import GradientRow, check_gradients, check_gradients_config, has_manual_backward
from .mistakes import check_bias_before_batch_norm, check_softmaxed_outputs, check_train_eval_mode, check_zero_grad
from .sanity import (
    check_batch_independence,
    check_causality,
    check_initial_loss,
    check_overfit,
    loss_floor,
    position_logits,
)

__all__ = ["CheckResult", "GradientRow", "check_batch_independence", "check_bias_before_batch_norm",
           "check_causality", "check_config", "check_gradients", "check_gradients_config", "check_initial_loss",
           "check_overfit", "check_softmaxed_outputs", "check_train_eval_mode", "check_zero_grad",
           "has_manual_backward", "is_batch_norm", "loss_floor", "position_logits", "run_checks"]


def run_checks(model: Model, data: Dataset, train_cfg: C.TrainConfig, overfit_steps: int = 1000) -> list[CheckResult]:
    """Every check, on an untrained model (count models are fitted first); the last one trains the model."""
    if model.needs_fit:
        model.fit_split(data.train)
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
