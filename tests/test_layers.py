"""The hand-written layers against their torch.nn counterparts, in float64 at tight tolerance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from makemore.models import layers as L

TOL = {"rtol": 1e-10, "atol": 1e-12}


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, **TOL)


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ours, ref = L.Linear(7, 5, bias=bias), nn.Linear(7, 5, bias=bias)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.T)  # torch keeps (fan_out, fan_in); the course's is (fan_in, fan_out)
        if bias:
            ours.bias.normal_()
            ref.bias.copy_(ours.bias)
    x = torch.randn(4, 3, 7, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    close(ours(x), ref(x2))
    ours(x).square().sum().backward()
    ref(x2).square().sum().backward()
    close(x.grad, x2.grad)
    close(ours.weight.grad, ref.weight.grad.T)
    assert (ours.bias is None) == (not bias)


def test_linear_init_is_kaiming_scaled():
    layer = L.Linear(400, 300, gain=5 / 3)
    assert layer.weight.std().item() == pytest.approx(5 / 3 / 400**0.5, rel=0.02)
    assert torch.all(layer.bias == 0)


def _bn_pair(dim: int) -> tuple[L.BatchNorm1d, nn.BatchNorm1d]:
    ours, ref = L.BatchNorm1d(dim), nn.BatchNorm1d(dim)
    with torch.no_grad():  # non-trivial gain and bias, the same in both
        ours.gain.uniform_(0.5, 2.0)
        ours.bias.normal_()
        ref.weight.copy_(ours.gain)
        ref.bias.copy_(ours.bias)
    return ours, ref


def _to_torch_layout(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2) if x.dim() == 3 else x  # torch wants (B, C, T); ours takes (B, T, C)


@pytest.mark.parametrize("shape", [(16, 6), (8, 5, 6)], ids=["2d", "3d"])
def test_batchnorm_train_mode_matches_torch(shape):
    ours, ref = _bn_pair(6)
    x = torch.randn(*shape) * 3 + 1
    x2 = x.clone().requires_grad_()
    x = x.requires_grad_()
    out, out_ref = ours(x), _to_torch_layout(ref(_to_torch_layout(x2)))
    close(out, out_ref)
    weights = torch.randn(*shape)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    close(x.grad, x2.grad)
    close(ours.gain.grad, ref.weight.grad)
    close(ours.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("shape", [(16, 6), (8, 5, 6)], ids=["2d", "3d"])
def test_batchnorm_running_statistics_and_eval_match_torch(shape):
    ours, ref = _bn_pair(6)
    for _ in range(5):  # several steps of running-estimate updates, each batch from a different distribution
        x = torch.randn(*shape) * torch.rand(6) * 4 + torch.randn(6)
        ours(x)
        ref(_to_torch_layout(x))
    close(ours.running_mean, ref.running_mean)
    close(ours.running_var, ref.running_var)  # unbiased, as torch keeps it
    ours.eval()
    ref.eval()
    x = torch.randn(*shape)
    close(ours(x), _to_torch_layout(ref(_to_torch_layout(x))))


def test_batchnorm_eval_output_of_a_row_does_not_depend_on_the_batch():
    bn = L.BatchNorm1d(6)
    bn(torch.randn(32, 6) * 2 + 1)  # move the running statistics away from their start
    bn.eval()
    x = torch.randn(10, 6)
    alone = torch.cat([bn(x[i:i + 1]) for i in range(10)])
    close(bn(x), alone)
    close(bn(torch.cat([x, torch.randn(50, 6) * 100]))[:10], alone)  # wild batch-mates change nothing
    bn.train()
    assert not torch.allclose(bn(torch.cat([x, torch.randn(50, 6) * 100]))[:10], bn(x))  # in training they do


def test_batchnorm_train_mode_needs_two_values():
    with pytest.raises(ValueError, match="more than one value"):
        L.BatchNorm1d(3)(torch.randn(1, 3))
    bn = L.BatchNorm1d(3).eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)  # eval mode uses running statistics: one row is fine


def test_batchnorm_statistics_are_buffers_and_params():
    bn = L.BatchNorm1d(4)
    assert set(dict(bn.named_parameters())) == {"gain", "bias"}
    assert set(dict(bn.named_buffers())) == {"running_mean", "running_var"}


def test_tanh_embedding_match_torch():
    x = torch.randn(5, 7) * 3
    close(L.Tanh()(x), nn.Tanh()(x))
    ours, ref = L.Embedding(11, 4), nn.Embedding(11, 4)
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
    idx = torch.randint(11, (3, 8))
    close(ours(idx), ref(idx))
    ours(idx).sum().backward()
    ref(idx).sum().backward()
    close(ours.weight.grad, ref.weight.grad)  # repeated indices accumulate their gradients


def test_flatten_consecutive_fuses_neighbours_in_order():
    x = torch.arange(2 * 8 * 3, dtype=torch.float64).view(2, 8, 3)  # (B, T, C)
    out = L.FlattenConsecutive(2)(x)
    assert out.shape == (2, 4, 6)
    close(out[1, 2], torch.cat([x[1, 4], x[1, 5]]))  # positions 4 and 5 side by side
    last = L.FlattenConsecutive(8)(x)
    assert last.shape == (2, 24)  # one group left: the position dim is dropped
    close(last, x.reshape(2, 24))
    with pytest.raises(ValueError, match="not a multiple"):
        L.FlattenConsecutive(3)(x)


def test_sequential_applies_in_order_and_follows_train_eval():
    seq = L.Sequential(L.Linear(4, 6, bias=False), L.BatchNorm1d(6), L.Tanh())
    x = torch.randn(10, 4)
    close(seq(x), torch.tanh(seq.layers[1](seq.layers[0](x))))
    seq.eval()
    assert not seq.layers[1].training  # model.eval() reaches every layer
    assert len(list(seq.parameters())) == 3
