"""Training diagnostics, as in the course: per-layer activation and gradient statistics, weight
gradients, and the update:data ratio, recorded by an observer of the training loop and read back.

Layers are found by generic module introspection, so every model is covered: every leaf module
that has parameters, plus every tanh layer (an nn.Tanh, or any module whose class is named Tanh),
where the saturation (share of outputs beyond +-0.97) is measured. A model without child modules
is its own single layer. Weight statistics cover the parameters with two or more dimensions
(matrices, embeddings), as the course does: gains and biases start constant, so their ratios say
nothing.

The update:data ratio logged is log10(std(actual change of the weight in the step) / std(weight
before the step)); the actual change includes the optimizer's scaling (AdamW) and weight decay, and
equals lr * grad for plain SGD. It should sit near -3.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from .output import dumps, nan_for_null

DIAG_FILE = "diagnostics.jsonl"
SATURATION = 0.97
BINS = 60


def is_tanh(module: nn.Module) -> bool:
    """A tanh layer: torch's own, or a hand-written one named Tanh."""
    return isinstance(module, nn.Tanh) or type(module).__name__.lower() == "tanh"


def tracked_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules with parameters and every tanh layer, in order; the model itself when it has no children."""
    out = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue
        if is_tanh(module) or next(module.parameters(recurse=False), None) is not None:
            out.append((name or "model", module))
    return out


def default_interval(max_steps: int) -> int:
    """An interval giving about 100 records over a run."""
    return max(1, max_steps // 100)


def _std(x: torch.Tensor) -> torch.Tensor:
    return x.float().std(correction=0)


def _hist(x: torch.Tensor) -> list[torch.Tensor]:
    """Range, sum, sum of squares and BINS equal-width counts of x, as device tensors (TensorBoard's raw histogram)."""
    x = x.detach().float().flatten()
    lo, hi = torch.aminmax(x)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))  # constant data: one unit wide, all in bin 0
    # binned by index_add_, not histc or bincount: those read the range on the host, a sync on a GPU
    idx = ((x - lo) / span * BINS).long().clamp_(0, BINS - 1)
    counts = torch.zeros(BINS, device=x.device).index_add_(0, idx, torch.ones_like(x))
    return [lo, hi, x.sum(), x.square().sum(), counts]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Diagnostics:
    """Observer for train(): on every interval-th step, record layer and weight statistics.

    On steps it does not want it does nothing at all: the forward hooks are registered in wants()
    only for the step being observed and removed once the backward pass has run. All statistics of
    an observed step, histograms included, are computed on the device and brought to the host with
    one transfer; TensorBoard gets the histograms as raw bucket counts (histograms=False: scalars only).
    """

    def __init__(self, model: nn.Module, interval: int, path: str | Path | None = None, tracker=None,
                 histograms: bool = True, append: bool = False):
        self.interval = interval
        self.layers = tracked_layers(model)
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
        self.tracker, self.histograms = tracker, histograms
        self.path = Path(path) if path is not None else None
        if self.path is not None and not append:
            self.path.unlink(missing_ok=True)
        self.records: list[dict] = []
        self._handles: list = []
        self._stats: dict[str, list] = {}  # name -> device tensors waiting for the one transfer
        self._before: list[torch.Tensor] = []

    def wants(self, step: int) -> bool:
        """True every interval steps; then hooks are put on the layers for this one forward pass."""
        if step % self.interval != 0:
            return False
        self._stats = {}
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._forward_hook(name, is_tanh(module))))
        return True

    def _forward_hook(self, name: str, tanh: bool):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output  # a whole model returns (logits, loss)
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return
            a = out.detach()
            saturation = (a.abs() > SATURATION).float().mean() if tanh else a.new_tensor(float("nan"))
            self._stats[f"act:{name}"] = [a.float().mean(), _std(a), saturation, *_hist(a)]
            if out.requires_grad:
                out.register_hook(lambda g: self._grad_hook(name, g))

        return hook

    def _grad_hook(self, name: str, grad: torch.Tensor) -> None:
        self._stats[f"actgrad:{name}"] = [grad.float().mean(), _std(grad), *_hist(grad)]

    def before_step(self, step: int, lr: float) -> None:
        """After backward: drop the hooks, take weight and gradient statistics, remember the weights."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for name, p in self.params:
            if p.grad is None:
                continue
            w_std, g_std = _std(p), _std(p.grad)
            self._stats[f"param:{name}"] = [w_std, p.grad.float().mean(), g_std, g_std / w_std, *_hist(p),
                                            *_hist(p.grad)]
        self._before = [p.detach().clone() for _, p in self.params]

    def after_step(self, step: int, lr: float) -> None:
        """After the optimizer step: the update:data ratios, then one transfer, then the record is written."""
        for (name, p), before in zip(self.params, self._before):
            if f"param:{name}" in self._stats:
                self._stats[f"param:{name}"].append(torch.log10(_std(p.detach() - before) / _std(before)))
        self._before = []
        flat = [t.flatten().float() for stats in self._stats.values() for t in stats]
        values = torch.cat(flat).tolist() if flat else []  # the one host sync of an observed step
        record = self._record(step, lr, values)
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(dumps(record) + "\n")
        self._log(record)
        self._stats = {}

    def _record(self, step: int, lr: float, values: list[float]) -> dict:
        """Unpack the flat list of numbers into named statistics, in the order they were computed."""
        it = iter(values)

        def take(n: int = 1):
            return [next(it) for _ in range(n)] if n > 1 else next(it)

        def hist() -> dict:
            lo, hi, total, squares = take(4)
            if hi <= lo:  # constant data: _hist made the range one unit wide
                hi = lo + 1.0
            return {"lo": lo, "hi": hi, "sum": total, "sum_sq": squares, "counts": [int(c) for c in take(BINS)]}

        layers = {name: {"type": type(m).__name__} for name, m in self.layers}
        params = {name: {"shape": list(p.shape)} for name, p in self.params}
        for key, stats in self._stats.items():
            kind, name = key.split(":", 1)
            if kind == "act":
                layers[name].update(mean=take(), std=take(), saturation=_finite(take()), hist=hist())
            elif kind == "actgrad":
                layers[name].update(grad_mean=take(), grad_std=take(), grad_hist=hist())
            else:
                params[name].update(std=take(), grad_mean=take(), grad_std=take(), grad_data=_finite(take()),
                                    hist=hist(), grad_hist=hist())
                if len(stats) > 14:  # the update:data ratio, appended after the step
                    params[name]["update_data"] = _finite(take())
        return {"step": step, "lr": lr, "layers": layers, "params": params}

    def _log(self, record: dict) -> None:
        """Scalars and (on request) histograms of the record to TensorBoard."""
        if self.tracker is None:
            return
        step = record["step"]
        for name, s in record["layers"].items():
            for stat in ("mean", "std", "saturation", "grad_std"):
                if s.get(stat) is not None:
                    self.tracker.scalar(f"diag_act_{stat}/{name}", s[stat], step)
        for name, s in record["params"].items():
            for stat in ("std", "grad_std", "grad_data", "update_data"):
                if s.get(stat) is not None:
                    self.tracker.scalar(f"diag_weight_{stat}/{name}", s[stat], step)
        writer = self.tracker.writer if self.histograms else None
        if writer is None:
            return
        layers, params = record["layers"], record["params"]
        for group, key, entries in (("activations", "hist", layers), ("activation_grads", "grad_hist", layers),
                                    ("weights", "hist", params), ("weight_grads", "grad_hist", params)):
            for name, s in entries.items():
                if key in s:
                    h = s[key]
                    width = (h["hi"] - h["lo"]) / BINS
                    limits = [h["lo"] + (i + 1) * width for i in range(BINS)]
                    writer.add_histogram_raw(f"{group}/{name}", h["lo"], h["hi"], sum(h["counts"]), h["sum"],
                                             h["sum_sq"], limits, h["counts"], step)


def read_diagnostics(run_dir: str | Path) -> list[dict]:
    """The records a run's diagnostics observer wrote, oldest first (empty when it recorded none)."""
    path = Path(run_dir) / DIAG_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(nan_for_null(json.loads(line)))  # NaN statistics are written as null
            except ValueError:  # a line cut short by a crash: keep the rest
                continue
    by_step = {r["step"]: r for r in records}  # a resumed run may repeat steps: the later record wins
    return [by_step[s] for s in sorted(by_step)]


def read_losses(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The training-loss means and dev losses a run logged to TensorBoard, as (step, value) lists."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = Path(run_dir) / "tb"
    if not tb.is_dir():
        return {}
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    out = {}
    for tag, key in (("loss/train_minibatch_mean", "train"), ("loss/dev", "dev")):
        if tag in tags:
            by_step = {e.step: e.value for e in acc.Scalars(tag)}
            out[key] = sorted(by_step.items())
    return out


def summary(record: dict) -> list[str]:
    """The course's printed summaries of one record: layers, then weights."""
    lines = [f"step {record['step']} (lr {record['lr']:.3g})"]
    for name, s in record["layers"].items():
        if "mean" not in s:
            continue
        sat = f", saturated {100 * s['saturation']:.2f}%" if s.get("saturation") is not None else ""
        grad = f" | grad std {s['grad_std']:.3e}" if "grad_std" in s else ""
        lines.append(f"  layer {name:24s} ({s['type']:>11s}): mean {s['mean']:+.4f}, std {s['std']:.4f}{sat}{grad}")
    for name, s in record["params"].items():
        if "std" not in s:
            continue
        shape = "x".join(str(d) for d in s["shape"])

        def fmt(v, spec):
            return "-" if v is None else format(v, spec)

        lines.append(f"  weight {name:23s} {shape:>10s}: std {s['std']:.4f} | grad std {s['grad_std']:.3e} | "
                     f"grad:data {fmt(s.get('grad_data'), '.3e')} | log10 update:data "
                     f"{fmt(s.get('update_data'), '+.2f')}")
    return lines


def draw(run_dir: str | Path, out_dir: str | Path | None = None, step: int | None = None,
         window: int | None = None) -> list[Path]:
    """The course's diagnostic figures of a run as PNGs (in RUN_DIR/plots by default); returns their paths."""
    from . import plots

    plots.require_matplotlib()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    records, losses = read_diagnostics(run_dir), read_losses(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if losses.get("train"):
        paths.append(plots.loss_curve(losses, out / "loss.png", window))
    if records:
        record = records[-1] if step is None else min(records, key=lambda r: abs(r["step"] - step))
        paths += plots.layer_histograms(record, out)
        paths.append(plots.update_ratios(records, out / "update_ratio.png"))
    return paths
