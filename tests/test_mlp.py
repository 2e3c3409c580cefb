"""The MLP's per-position tables: the plain hidden layer's numbers and gradients, taken only where they pay."""

import torch

from makemore.models.mlp import MLP, MLPConfig

V = 27


def wide_mlp() -> MLP:
    """An MLP whose embedding is wider than the vocabulary, so tables pay at a batch of 64."""
    torch.manual_seed(0)
    model = MLP(MLPConfig(block_size=3, n_embd=40, n_embd2=16), V)
    return model


def plain_hidden(model: MLP, idx: torch.Tensor) -> torch.Tensor:
    """The hidden layer's input as the plain path computes it: concatenated embeddings through the Linear."""
    return model.hidden(model.wte(idx).flatten(1))


def test_tables_give_the_plain_layers_values_and_gradients():
    model = wide_mlp()
    idx = torch.randint(V, (64, 3), generator=torch.Generator().manual_seed(1))
    grads = []
    for hidden in (plain_hidden, MLP.hidden_from_tables):
        model.zero_grad()
        pre = hidden(model, idx)
        (pre.tanh() * torch.linspace(-1, 1, pre.numel()).view_as(pre)).sum().backward()
        learned = (model.wte.weight, model.hidden.weight, model.hidden.bias)
        grads.append((pre.detach(), [p.grad.clone() for p in learned]))
    (plain, plain_grads), (tables, table_grads) = grads
    torch.testing.assert_close(tables, plain, rtol=1e-5, atol=1e-5)
    for g_tables, g_plain in zip(table_grads, plain_grads):
        torch.testing.assert_close(g_tables, g_plain, rtol=1e-4, atol=1e-5)


def test_forward_takes_the_tables_only_where_they_cost_fewer_multiply_adds():
    model = wide_mlp()  # V * (C + B) < B * C: 27 * (40 + B) < 40 * B, i.e. B >= 84
    assert not model.use_tables(83) and model.use_tables(84)
    idx = torch.randint(V, (100, 3), generator=torch.Generator().manual_seed(2))
    calls = []
    model.hidden.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
    model(idx[:83])
    assert calls == [83]  # the plain path ran the Linear
    handle = model.wte.register_forward_hook(lambda *a: None)  # diagnostics watch layers by hooks like this
    model(idx)
    assert calls == [83, 100]  # a watched model keeps the plain path, where its hooks run
    handle.remove()
    model(idx)
    assert calls == [83, 100]  # unwatched at batch 100: the tables, not the Linear's forward


def test_narrow_embeddings_never_take_the_tables():
    model = MLP(MLPConfig(block_size=8, n_embd=24, n_embd2=32), V)  # the shipped 24 < 27 characters
    assert not any(model.use_tables(b) for b in (1, 512, 10**6))


def test_manual_backward_keeps_its_own_layers():
    model = MLP(MLPConfig(block_size=3, n_embd=40, n_embd2=16, backward="manual"), V)
    calls = []
    model.head.register_forward_pre_hook(lambda *a: calls.append(1))
    model.hidden.register_forward_pre_hook(lambda *a: calls.append(2))
    logits, loss = model(torch.zeros(200, 3, dtype=torch.long), torch.zeros(200, dtype=torch.long))
    assert logits.shape == (200, V) and loss.dim() == 0 and calls == []  # Manual* functions, not the modules
