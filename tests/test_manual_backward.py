"""Hand-written backward passes: each derived formula against numerical and autograd gradients, and in training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from makemore.cli import build_parser, config_overrides, main
from makemore.data import load_dataset
from makemore.models import MODELS, create_model
from makemore.models import layers as L
from makemore.train import train
from tests.conftest import quick_config


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def rand(*shape) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_and_tanh_formulas(shape, bias):
    x, w, b = rand(*shape), rand(4, 3), rand(3) if bias else None
    assert gradcheck(L.ManualLinear.apply, (x, w, b))
    assert gradcheck(L.ManualTanh.apply, (x * 2,))


@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)], ids=["2d", "3d"])
def test_batchnorm_formula(shape):
    x, gain, bias = rand(*shape), rand(4), rand(4)
    assert gradcheck(lambda *a: L.ManualBatchNorm.apply(*a, 1e-5)[0], (x * 3 + 1, gain, bias))
    _, mean, var = L.ManualBatchNorm.apply(x, gain, bias, 1e-5)
    dims = tuple(range(len(shape) - 1))
    torch.testing.assert_close(mean, x.mean(dims))
    torch.testing.assert_close(var, x.var(dims, unbiased=False))
    assert not mean.requires_grad and not var.requires_grad


def test_embedding_and_cross_entropy_formulas():
    weight, idx = rand(7, 3), torch.tensor([[1, 4, 1], [6, 1, 0]])  # repeated tokens: gradients add up
    assert gradcheck(L.ManualEmbedding.apply, (weight, idx))
    logits, targets = rand(5, 7), torch.tensor([0, 3, 3, 6, 1])
    assert gradcheck(L.ManualCrossEntropy.apply, (logits, targets))
    torch.testing.assert_close(L.ManualCrossEntropy.apply(logits, targets), F.cross_entropy(logits, targets))


SIZES = {"mlp": {"block_size": 3, "n_embd": 4, "n_embd2": 16},
         "bnmlp": {"block_size": 3, "n_embd": 4, "n_embd2": 16, "n_layer": 2}}


def twins(model_type: str, vocab: int = 11):
    """The same model with autograd and with manual backward, sharing every weight."""
    cls = MODELS[model_type]
    auto = cls(cls.Config(**SIZES[model_type]), vocab)
    manual = cls(cls.Config(**SIZES[model_type], backward="manual"), vocab)
    manual.load_state_dict(auto.state_dict())
    return auto, manual


@pytest.mark.parametrize("model_type", ["mlp", "bnmlp"])
def test_every_parameter_gradient_matches_autograd(model_type, float64):
    auto, manual = twins(model_type)
    with torch.no_grad():  # move gains and biases off their 1 and 0, so their gradients are not special
        for p in auto.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    manual.load_state_dict(auto.state_dict())
    x, y = torch.randint(11, (32, 3)), torch.randint(11, (32,))
    _, loss = auto(x, y)
    _, loss_manual = manual(x, y)
    torch.testing.assert_close(loss_manual, loss, rtol=1e-12, atol=0)
    loss.backward()
    loss_manual.backward()
    grads = dict(manual.named_parameters())
    for name, p in auto.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-6, atol=1e-9, msg=name)
    for name, buf in auto.named_buffers():  # batch norm's running statistics move the same way
        torch.testing.assert_close(dict(manual.named_buffers())[name], buf, rtol=1e-12, atol=0)
    auto.eval()
    manual.eval()
    torch.testing.assert_close(manual(x)[0], auto(x)[0], rtol=1e-12, atol=0)
    assert manual(x)[1] is None


@pytest.mark.parametrize("model_type", ["mlp", "bnmlp"])
def test_no_gradient_comes_from_autograds_own_derivatives(model_type):
    _, manual = twins(model_type)
    _, loss = manual(torch.randint(11, (8, 3)), torch.randint(11, (8,)))
    nodes, stack = set(), [loss.grad_fn]
    while stack:  # every node of the backward graph
        node = stack.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            stack.extend(child for child, _ in node.next_functions)
    names = {type(node).__name__ for node in nodes}
    layout = {"AccumulateGrad", "ViewBackward0", "PermuteBackward0", "TBackward0"}  # flatten, nn.Linear's (out, in)
    expected = {"Linear", "Tanh", "Embedding", "CrossEntropy"} | ({"BatchNorm"} if model_type == "bnmlp" else set())
    assert names - layout == {f"Manual{name}Backward" for name in expected}


@pytest.mark.parametrize("model_type", ["mlp", "bnmlp"])
def test_training_with_manual_backward_reaches_the_same_dev_nll(model_type, tiny_file, tmp_path):
    # SGD without decay: AdamW makes a whole step of any gradient entry near its eps (1e-8), so float32
    # rounding differences there grow into different runs (about 5e-5 in dev NLL after 200 bnmlp steps)
    data = load_dataset(tiny_file, warn=lambda m: None)
    results = {}
    for backward in ("autograd", "manual"):
        cfg = quick_config(tmp_path / backward, model_type, tiny_file, **{
            "model.backward": backward, "model.n_embd2": 32, "train.max_steps": 40, "train.eval_interval": 20,
            "train.optimizer": "sgd", "train.momentum": 0.9, "train.lr": 0.1, "train.weight_decay": 0.0,
            "train.warmup_steps": 0})
        torch.manual_seed(cfg.seed)
        model = create_model(model_type, cfg.model, data.vocab.size)
        (tmp_path / backward).mkdir()
        results[backward] = train(model, data, cfg, tmp_path / backward, progress=False, write=lambda m: None)
    auto, manual = results["autograd"].best_dev_loss, results["manual"].best_dev_loss
    assert abs(auto - manual) < 1e-4
    assert auto < 3.0  # it learned (ln 27 = 3.30): the comparison is of a real run


def test_manual_backward_flag(tmp_path, tiny_file, capsys):
    args = build_parser().parse_args(["train", "--manual-backward"])
    assert config_overrides(args)["model.backward"] == "manual"
    assert "model.backward" not in config_overrides(build_parser().parse_args(["train"]))
    work = tmp_path / "run"
    assert main(["--type", "bnmlp", "--manual-backward", "--input", str(tiny_file), "--work-dir", str(work),
                 "--max-steps", "5", "--batch-size", "8", "--n-embd2", "8", "--no-progress"]) == 0
    assert "backward: manual" in (work / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["--type", "nbigram", "--manual-backward", "--input", str(tiny_file), "--work-dir",
                 str(tmp_path / "nb"), "--max-steps", "5", "--no-progress"]) == 2
    assert "unknown key model.backward" in capsys.readouterr().err
