"""The scalar engine against torch in float64, its network library, its graphs, and its use as nbigram's engine."""

from __future__ import annotations

import math
import random
import re
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from makemore.cli import main
from makemore.data import load_dataset
from makemore.micrograd import MLP, Neuron, Value, cross_entropy
from makemore.micrograd.torch_bridge import scalar_loss
from makemore.models import create_model
from makemore.tracking import Tracker
from makemore.train import train
from tests.conftest import quick_config

TOL = {"rel_tol": 1e-9, "abs_tol": 1e-9}

# name -> (op, domain): op is written once for both engines, as Value and torch.Tensor share the operators and
# method names; domain says from the operands' values where op is applied (elsewhere the step is skipped)
OPS = {
    "add": (lambda a, b: a + b, lambda a, b: True),
    "radd": (lambda a, b: 1.5 + a, lambda a, b: True),
    "sub": (lambda a, b: a - b, lambda a, b: True),
    "rsub": (lambda a, b: 2.0 - a, lambda a, b: True),
    "neg": (lambda a, b: -a, lambda a, b: True),
    "mul": (lambda a, b: a * b, lambda a, b: True),
    "rmul": (lambda a, b: -0.7 * a, lambda a, b: True),
    "div": (lambda a, b: a / b, lambda a, b: abs(b) > 0.2),
    "rdiv": (lambda a, b: 1.3 / a, lambda a, b: abs(a) > 0.2),
    "square": (lambda a, b: a**2, lambda a, b: True),
    "cube": (lambda a, b: a**3, lambda a, b: True),
    "inverse": (lambda a, b: a**-1, lambda a, b: abs(a) > 0.2),
    "sqrt": (lambda a, b: a**0.5, lambda a, b: a > 0.1),
    "pow": (lambda a, b: a**b, lambda a, b: a > 0.1 and abs(b * math.log(a)) < 5),
    "rpow": (lambda a, b: 1.7**a, lambda a, b: abs(a) < 5),
    "exp": (lambda a, b: a.exp(), lambda a, b: abs(a) < 5),
    "log": (lambda a, b: a.log(), lambda a, b: a > 0.1),
    "tanh": (lambda a, b: a.tanh(), lambda a, b: True),
    "relu": (lambda a, b: a.relu(), lambda a, b: abs(a) > 1e-6),  # away from the kink, where rounding picks a side
}


def build_both(leaves: list[float], steps: list[tuple[str, int, int]]) -> tuple[list[Value], list[torch.Tensor]]:
    """The same graph in both engines: each step applies an op to earlier nodes (reusing nodes is allowed)."""
    ours = [Value(x) for x in leaves]
    theirs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    for name, i, j in steps:
        i, j = i % len(ours), j % len(ours)
        op, domain = OPS[name]
        if not domain(ours[i].data, ours[j].data):
            continue
        out = op(ours[i], ours[j])
        if abs(out.data) > 1e3:  # keep magnitudes where float64 rounding stays far below the tolerance
            continue
        ours.append(out)
        theirs.append(op(theirs[i], theirs[j]))
        theirs[-1].retain_grad()
    return ours, theirs


def assert_same_values_and_grads(ours: list[Value], theirs: list[torch.Tensor]) -> None:
    out, ref = sum(ours), sum(theirs)  # every node reaches the output
    out.backward()
    ref.backward()
    assert math.isclose(out.data, ref.item(), **TOL)
    for v, t in zip(ours, theirs):
        assert math.isclose(v.data, t.item(), **TOL)
        assert math.isclose(v.grad, t.grad.item(), **TOL), (v, t.grad)


STEP = st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 40), st.integers(0, 40))  # op, operand, operand


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaves=st.lists(st.floats(-2, 2), min_size=1, max_size=4), steps=st.lists(STEP, min_size=5, max_size=30))
def test_random_expression_graphs_match_torch_float64(leaves, steps):
    assert_same_values_and_grads(*build_both(leaves, steps))


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_operation_matches_torch(name):
    ours, theirs = build_both([0.8, 1.3], [(name, 0, 1), (name, 1, 0), (name, 2, 2)])
    assert len(ours) >= 4  # the op was applied, not skipped by its domain
    assert_same_values_and_grads(ours, theirs)


def test_gradients_accumulate_as_in_the_course():
    a = Value(3.0)
    (a + a).backward()  # the course's bug: a node used twice must get the gradient of both uses
    assert a.grad == 2.0
    a = Value(3.0)
    ((a + 1) * (a + 2)).backward()  # through two different nodes: d/da = (a + 2) + (a + 1)
    assert a.grad == 9.0
    a, b = Value(3.0), Value(-2.0)
    c = a * b + a  # a is used twice: its gradient is the sum over both uses
    c.backward()
    assert (a.grad, b.grad) == (-1.0, 3.0)
    (a * b).backward()  # a second forward and backward, nothing zeroed: the leaves' gradients add up
    assert (a.grad, b.grad) == (-3.0, 6.0)  # which is why a training step calls zero_grad first


def test_a_very_deep_graph_backpropagates():
    xs = [Value(i / 1000) for i in range(5000)]
    total = sum(x * x for x in xs)  # a chain of 5000 additions: far deeper than Python's recursion limit
    total.backward()
    assert xs[1234].grad == pytest.approx(2 * 1.234)


def _copy_to_torch(net: MLP, act: str) -> nn.Sequential:
    layers = []
    for k, layer in enumerate(net.layers):
        linear = nn.Linear(len(layer.neurons[0].w), len(layer.neurons), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers += [linear] + ([nn.Tanh() if act == "tanh" else nn.ReLU()] if k < len(net.layers) - 1 else [])
    return nn.Sequential(*layers)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_mlp_matches_an_identical_torch_mlp(act):
    rng = random.Random(0)
    net = MLP(3, [5, 4, 3], act=act, rng=rng)
    for p in net.parameters():
        if p.label == "b":
            p.data = rng.uniform(-1, 1)  # biases start at 0: give them values, so their role is checked too
    ref = _copy_to_torch(net, act)
    xs = [[rng.uniform(-2, 2) for _ in range(3)] for _ in range(6)]
    ys = [rng.randrange(3) for _ in range(6)]

    loss = sum(cross_entropy(net(x), y) for x, y in zip(xs, ys)) / len(xs)
    loss.backward()
    ref_loss = F.cross_entropy(ref(torch.tensor(xs, dtype=torch.float64)), torch.tensor(ys))
    ref_loss.backward()
    assert math.isclose(loss.data, ref_loss.item(), **TOL)
    linears = [m for m in ref if isinstance(m, nn.Linear)]
    for layer, linear in zip(net.layers, linears):
        grads = torch.tensor([[w.grad for w in n.w] for n in layer.neurons], dtype=torch.float64)
        torch.testing.assert_close(grads, linear.weight.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(torch.tensor([n.b.grad for n in layer.neurons], dtype=torch.float64),
                                   linear.bias.grad, rtol=1e-9, atol=1e-12)


def test_parameters_and_zero_grad():
    net = MLP(3, [4, 2])
    assert len(net.parameters()) == (3 + 1) * 4 + (4 + 1) * 2
    assert len(set(map(id, net.parameters()))) == len(net.parameters())
    sum(net([1.0, -2.0, 0.5])).backward()
    assert any(p.grad != 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad == 0 for p in net.parameters())
    assert net.layers[-1].neurons[0].act == "linear" and net.layers[0].neurons[0].act == "tanh"
    with pytest.raises(ValueError, match="unknown activation"):
        Neuron(2, act="sigmoid")


def test_a_tiny_mlp_learns_by_gradient_descent():
    net = MLP(3, [4, 4, 1], rng=random.Random(1))
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    for _ in range(50):  # the course's example: four points, squared error
        loss = sum((net(x)[0] - y) ** 2 for x, y in zip(xs, ys))
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.05 * p.grad
    assert loss.data < 0.05


def _neuron_graph() -> Value:
    n = Neuron(2, rng=random.Random(1))
    out = n([Value(0.5, label="x0"), Value(-1.5, label="x1")])
    out.label = "out"
    out.backward()
    return out


def test_to_dot_of_a_neuron_names_every_node():
    out = _neuron_graph()
    dot = out.to_dot()
    nodes = out.nodes()
    records = re.findall(r'^  (v\d+) \[shape=record, label="\{ (\S+) \| data (\S+) \| grad (\S+) \}"\];$', dot, re.M)
    assert len(records) == len(nodes) == 10  # w0 w1 b x0 x1, two products, two sums, tanh
    assert len({ident for ident, *_ in records}) == len(nodes)  # one DOT node per Value
    names = [name for _, name, _, _ in records]
    assert {"w0", "w1", "b", "x0", "x1", "out"} <= set(names)
    assert all(names)  # unlabelled values are named after their place in the graph
    by_name = dict((name, (float(data), float(grad))) for _, name, data, grad in records)
    assert by_name["out"] == (round(out.data, 4), 1.0)
    w0 = next(v for v in nodes if v.label == "w0")
    assert by_name["w0"] == (round(w0.data, 4), round(w0.grad, 4))
    ops = re.findall(r'^  (v\d+)_op \[shape=circle, label="(\S+)"\];$', dot, re.M)
    assert sorted(op for _, op in ops) == ["*", "*", "+", "+", "tanh"]
    edges = re.findall(r"^  (v\d+(?:_op)?) -> (v\d+(?:_op)?);$", dot, re.M)
    assert len(edges) == len(ops) + sum(len(v._prev) for v in nodes)
    assert dot.startswith("digraph {") and dot.rstrip().endswith("}")


def test_to_dot_escapes_labels():
    v = Value(1.0, label='a|b {"c"}') * 2
    assert r'a\|b \{\"c\"\}' in v.to_dot()


def test_draw_without_graphviz_writes_dot_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now raises ImportError
    out = _neuron_graph()
    written = out.draw(tmp_path / "neuron.svg")
    assert written == tmp_path / "neuron.dot" and not (tmp_path / "neuron.svg").exists()
    assert written.read_text() == out.to_dot()
    assert "pip install 'makemore[graphviz]'" in capsys.readouterr().err


def test_draw_renders_with_graphviz(tmp_path, monkeypatch):
    calls = []

    class Source:
        def __init__(self, text):
            self.text = text

        def pipe(self, format):
            calls.append((self.text, format))
            return b"rendered " + format.encode()

    monkeypatch.setitem(sys.modules, "graphviz", types.SimpleNamespace(Source=Source))
    out = _neuron_graph()
    assert out.draw(tmp_path / "neuron.png") == tmp_path / "neuron.png"
    assert (tmp_path / "neuron.png").read_bytes() == b"rendered png"
    assert calls == [(out.to_dot(), "png")]


def test_bridge_gives_torch_the_engines_loss_and_gradients():
    torch.manual_seed(0)
    W, v = torch.randn(3, 4, requires_grad=True), torch.randn(4, requires_grad=True)

    def fn(rows, vec):  # sum_i tanh(W_i . v) + sum_j exp(v_j) / 4
        return sum(sum(w * x for w, x in zip(row, vec)).tanh() for row in rows) + sum(x.exp() for x in vec) / 4

    loss = scalar_loss(fn, W, v)
    assert loss.dtype == torch.float32 and loss.shape == ()
    (3 * loss).backward(retain_graph=True)  # the incoming gradient (3) scales the engine's
    W2, v2 = W.detach().double().requires_grad_(), v.detach().double().requires_grad_()
    ref = torch.tanh(W2 @ v2).sum() + v2.exp().sum() / 4
    (3 * ref).backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close(W.grad, W2.grad.float())
    torch.testing.assert_close(v.grad, v2.grad.float())
    with pytest.raises(RuntimeError, match="already backpropagated"):
        loss.backward()


class LossRecorder(Tracker):
    """Keeps the minibatch loss of every logged step."""

    def __init__(self):
        super().__init__(None)
        self.losses = []

    def scalar(self, tag, value, step):
        if tag == "loss/train_minibatch_mean":
            self.losses.append(value)


def _nbigram_losses(tmp_path, tiny_file, engine: str) -> tuple[list[float], torch.Tensor]:
    cfg = quick_config(tmp_path / engine, "nbigram", tiny_file, **{
        "model.engine": engine, "train.max_steps": 20, "train.batch_size": 8, "train.log_interval": 1,
        "train.eval_interval": 20, "train.eval_samples": 0})
    data = load_dataset(tiny_file, warn=lambda m: None)
    model = create_model("nbigram", cfg.model, data.vocab.size)
    (tmp_path / engine).mkdir()
    recorder = LossRecorder()
    train(model, data, cfg, tmp_path / engine, tracker=recorder, progress=False, write=lambda m: None)
    return recorder.losses, model.W.detach()


def test_nbigram_on_the_micrograd_engine_has_the_torch_engines_losses(tmp_path, tiny_file):
    ours, W = _nbigram_losses(tmp_path, tiny_file, "micrograd")
    ref, W_ref = _nbigram_losses(tmp_path, tiny_file, "torch")
    assert len(ours) == len(ref) == 20
    assert max(abs(a - b) for a, b in zip(ours, ref)) < 1e-6
    assert ref[-1] < ref[0] - 0.3  # it learned: the comparison is of a real trajectory
    torch.testing.assert_close(W, W_ref, rtol=0, atol=1e-5)


def test_cli_engine_flag_prints_and_logs_the_same_losses(tmp_path, tiny_items, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = tmp_path / "hundred.txt"
    path.write_text("\n".join(tiny_items[:100]) + "\n", encoding="utf-8")
    printed, logged = {}, {}
    for engine in ("micrograd", "torch"):
        work = tmp_path / engine
        assert main(["--type", "nbigram", "--engine", engine, "--input", str(path), "--max-steps", "20",
                     "--batch-size", "8", "--eval-interval", "5", "--work-dir", str(work), "--no-progress",
                     "--set", "train.log_interval=1"]) == 0
        lines = capsys.readouterr().out.splitlines()
        printed[engine] = [re.sub(r", [\d.]+s$", "", line) for line in lines
                           if re.match(r"step \d+: dev nll|  (train|dev|test) +nll", line)]  # minus timings
        acc = EventAccumulator(str(work / "tb"), size_guidance={"scalars": 0})
        acc.Reload()
        logged[engine] = [e.value for e in acc.Scalars("loss/train_minibatch_mean")]
    assert "engine: micrograd" in (tmp_path / "micrograd" / "config.yaml").read_text()
    assert len(printed["torch"]) == 4 + 3 and printed["micrograd"] == printed["torch"]
    assert len(logged["torch"]) == 20
    assert max(abs(a - b) for a, b in zip(logged["micrograd"], logged["torch"])) < 1e-6
