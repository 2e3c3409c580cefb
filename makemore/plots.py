"""PNG figures: the learning-rate finder's curve and the course's training diagnostics.

matplotlib is an optional extra, imported only here and only when a figure is drawn; figures are
drawn with matplotlib's object API (no pyplot), so no display and no global state is involved.
"""

from __future__ import annotations

from pathlib import Path

from .config import ConfigError

INSTALL_HINT = "pip install 'makemore[plot]'"
# every figure `makemore diagnose` / --plots draws into RUN_DIR/plots (an --overwrite removes exactly these)
FIGURES = ("loss.png", "activations.png", "activation_grads.png", "weight_grads.png", "update_ratio.png")


class PlotError(ConfigError):
    """Figures were asked for but matplotlib is not installed."""


def require_matplotlib() -> None:
    """Fail early, in one line, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(f"drawing PNG figures needs matplotlib: {INSTALL_HINT}") from None


def _figure(width: float = 8, height: float = 4.5):
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def lr_curve(lrs: list[float], losses: list[float], smoothed: list[float], suggestion: float,
             path: str | Path, diverged_at: float | None = None) -> Path:
    """Loss against learning rate on a log axis, the suggested rate marked."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(lrs, losses, color="0.75", linewidth=0.8, label="minibatch loss")
    ax.plot(lrs[: len(smoothed)], smoothed, color="C0", label="smoothed")
    ax.axvline(suggestion, color="C2", linestyle="--", label=f"suggested lr {suggestion:.2e}")
    if diverged_at is not None:
        ax.axvline(diverged_at, color="C3", linestyle=":", label=f"diverging at {diverged_at:.2e}")
    finite = [v for v in smoothed if v == v]
    if finite:  # keep the interesting range: from below the minimum to a little above the start
        ax.set_ylim(min(finite) - 0.1 * (finite[0] - min(finite) + 1e-3), finite[0] * 1.3 + 1e-3)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (nats)")
    ax.set_title("learning-rate finder")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def loss_curve(losses: dict, path: str | Path, window: int | None = None) -> Path:
    """Training loss averaged over windows of steps (the course's view(-1, k).mean(1)), dev loss as points."""
    steps, values = zip(*losses["train"])
    if window is None:  # about 50 points over the run, never finer than what was logged
        logged = steps[1] - steps[0] if len(steps) > 1 else 1
        window = max(logged, (steps[-1] // 50 // logged) * logged)
    buckets: dict[int, list[float]] = {}
    for s, v in zip(steps, values):
        buckets.setdefault((s - 1) // window, []).append(v)
    centers = [(k + 1) * window for k in sorted(buckets)]
    means = [sum(buckets[k]) / len(buckets[k]) for k in sorted(buckets)]
    fig = _figure()
    ax = fig.add_subplot()
    if len(centers) < len(steps):  # the raw logged means, unless each window is just one of them
        ax.plot(steps, values, color="0.8", linewidth=0.8, label="train (logged means)")
    ax.plot(centers, means, color="C0", label=f"train, mean over {window} steps")
    if losses.get("dev"):
        ax.plot(*zip(*losses["dev"]), "o-", color="C1", label="dev")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.set_title("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _hist_line(ax, hist: dict, label: str) -> None:
    """One histogram as a density curve (the course plots distributions as lines, one per layer)."""
    lo, hi, counts = hist["lo"], hist["hi"], hist["counts"]
    width = (hi - lo) / len(counts) if hi > lo else 1.0
    total = sum(counts) or 1
    centers = [lo + (i + 0.5) * width for i in range(len(counts))]
    ax.plot(centers, [c / total / width for c in counts], label=label)


def layer_histograms(record: dict, out_dir: str | Path) -> list[Path]:
    """Activation, activation-gradient and weight-gradient distributions of one record, one curve per layer."""
    layers = record["layers"]
    tanh = {n: s for n, s in layers.items() if s["type"].lower() == "tanh"}
    shown = tanh or layers  # the course shows the tanh layers; without any, every tracked layer
    out = []
    for key, what, fname in (("hist", "activation", "activations.png"),
                             ("grad_hist", "activation gradient", "activation_grads.png")):
        fig = _figure()
        ax = fig.add_subplot()
        for name, s in shown.items():
            if key not in s:
                continue
            if key == "hist":
                sat = f", saturated {100 * s['saturation']:.1f}%" if s.get("saturation") is not None else ""
                label = f"{name} ({s['type']}): mean {s['mean']:+.2f}, std {s['std']:.2f}{sat}"
            else:
                label = f"{name} ({s['type']}): mean {s['grad_mean']:+.1e}, std {s['grad_std']:.1e}"
            _hist_line(ax, s[key], label)
        ax.set_title(f"{what} distribution, step {record['step']}")
        ax.set_xlabel(what)
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
        out.append(_save(fig, Path(out_dir) / fname))
    fig = _figure()
    ax = fig.add_subplot()
    for name, s in record["params"].items():
        if "grad_hist" in s:
            shape = "x".join(str(d) for d in s["shape"])
            ratio = f", grad:data {s['grad_data']:.1e}" if s.get("grad_data") is not None else ""
            _hist_line(ax, s["grad_hist"], f"{name} ({shape}): std {s['grad_std']:.1e}{ratio}")
    ax.set_title(f"weight gradient distribution, step {record['step']}")
    ax.set_xlabel("gradient")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    out.append(_save(fig, Path(out_dir) / "weight_grads.png"))
    return out


def update_ratios(records: list[dict], path: str | Path) -> Path:
    """log10 update:data ratio of every weight matrix over the steps, with the course's -3 guide."""
    fig = _figure()
    ax = fig.add_subplot()
    names = list(dict.fromkeys(n for r in records for n in r["params"]))
    for name in names:
        points = [(r["step"], r["params"][name].get("update_data")) for r in records if name in r["params"]]
        points = [(s, v) for s, v in points if v is not None]
        if points:
            ax.plot(*zip(*points), label=name)
    ax.axhline(-3, color="k", linestyle="--", linewidth=1, label="-3 (course's rule of thumb)")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(std(update) / std(weight))")
    ax.set_title("update:data ratio")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)
