"""The recurrent nets against their papers' cell equations, state carried between characters, and the bag of words."""

from __future__ import annotations

import pytest
import torch

from makemore.cli import main
from makemore.config import ConfigError
from makemore.models import ModelConfigError, create_model
from makemore.models.bow import BoWConfig
from makemore.models.gru import GRUConfig
from makemore.models.lstm import LSTMConfig
from makemore.models.rnn import RNNConfig
from makemore.runs import build_config
from makemore.sample import generate

CONFIGS = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig, "bow": BoWConfig}
RECURRENT = ("rnn", "gru", "lstm")
V = 11


def model_of(kind: str, max_length: int = 9, **options):
    """A small model with every parameter moved off its initialization (zeros would hide wiring)."""
    defaults = {"n_embd": 6, "n_embd2": 8}
    torch.manual_seed(0)
    model = create_model(kind, CONFIGS[kind](**{**defaults, **options}), V, max_length)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def random_items(n: int = 5, t: int = 10) -> torch.Tensor:
    """Inputs as training sees them: the start token 0, then characters (some 0s, as padding is)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (n, t), generator=g)
    x[:, 0] = 0
    return x


# ---- the papers' equations, one position and one layer at a time, from the model's own weights -------------


def sigmoid(a):
    return 1 / (1 + torch.exp(-a))


def elman(model, idx):
    """Elman 1990 / Mikolov et al. 2010 (tanh): h_t = tanh(W x_t + U h_{t-1} + b)."""
    n_layer = model.config.n_layer
    h = [model.start[i].expand(idx.size(0), -1) for i in range(n_layer)]
    out = []
    for t in range(idx.size(1)):
        x = model.wte.weight[idx[:, t]]
        for i in range(n_layer):
            w, u = getattr(model.rnn, f"weight_ih_l{i}"), getattr(model.rnn, f"weight_hh_l{i}")
            b = getattr(model.rnn, f"bias_ih_l{i}") + getattr(model.rnn, f"bias_hh_l{i}")
            h[i] = torch.tanh(x @ w.T + h[i] @ u.T + b)
            x = h[i]
        out.append(model.head(x))
    return torch.stack(out, dim=1)


def cho(model, idx):
    """Cho et al. 2014 eqs. 5-8: r, z = sigmoid(W x + U h); h~ = tanh(W x + U (r * h)); h = z h + (1 - z) h~."""
    n_layer, size = model.config.n_layer, model.config.n_embd2
    h = [model.start[i].expand(idx.size(0), -1) for i in range(n_layer)]
    out = []
    for t in range(idx.size(1)):
        x = model.wte.weight[idx[:, t]]
        for i, layer in enumerate(model.layers):
            w_r, w_z, w = layer.w.weight.split(size)
            b_r, b_z, b = layer.w.bias.split(size)
            u_r, u_z = layer.u_rz.weight.split(size)
            r = sigmoid(x @ w_r.T + b_r + h[i] @ u_r.T)
            z = sigmoid(x @ w_z.T + b_z + h[i] @ u_z.T)
            candidate = torch.tanh(x @ w.T + b + (r * h[i]) @ layer.u.weight.T)
            h[i] = z * h[i] + (1 - z) * candidate
            x = h[i]
        out.append(model.head(x))
    return torch.stack(out, dim=1)


def graves(model, idx):
    """Graves 2013 eqs. 7-11: the LSTM with diagonal peepholes from the cell to the gates."""
    n_layer, size = model.config.n_layer, model.config.n_embd2
    h = [model.start[0, i].expand(idx.size(0), -1) for i in range(n_layer)]
    c = [model.start[1, i].expand(idx.size(0), -1) for i in range(n_layer)]
    out = []
    for t in range(idx.size(1)):
        x = model.wte.weight[idx[:, t]]
        for j, layer in enumerate(model.layers):
            w_xi, w_xf, w_xc, w_xo = layer.w_x.weight.split(size)
            b_i, b_f, b_c, b_o = layer.w_x.bias.split(size)
            w_hi, w_hf, w_hc, w_ho = layer.w_h.weight.split(size)
            w_ci, w_cf, w_co = layer.peephole
            i = sigmoid(x @ w_xi.T + h[j] @ w_hi.T + w_ci * c[j] + b_i)
            f = sigmoid(x @ w_xf.T + h[j] @ w_hf.T + w_cf * c[j] + b_f)
            c[j] = f * c[j] + i * torch.tanh(x @ w_xc.T + h[j] @ w_hc.T + b_c)
            o = sigmoid(x @ w_xo.T + h[j] @ w_ho.T + w_co * c[j] + b_o)
            h[j] = o * torch.tanh(c[j])
            x = h[j]
        out.append(model.head(x))
    return torch.stack(out, dim=1)


REFERENCE = {"rnn": elman, "gru": cho, "lstm": graves}


@pytest.mark.parametrize("n_layer", [1, 2])
@pytest.mark.parametrize("kind", RECURRENT)
def test_forward_equals_the_papers_cell_equations(kind, n_layer):
    model = model_of(kind, n_layer=n_layer, dropout=0.5)  # eval mode: dropout must be off
    x = random_items()
    with torch.no_grad():
        logits, _ = model(x)
        expected = REFERENCE[kind](model, x)
    assert torch.allclose(logits, expected, atol=1e-5, rtol=1e-5), (logits - expected).abs().max().item()


@pytest.mark.parametrize("kind", RECURRENT)
def test_the_state_carries_the_first_character_to_the_last_prediction(kind):
    # a net that fed every position the start state would see only the current character: a bigram
    model = model_of(kind)
    x = random_items(2, 8)
    x[1] = x[0]
    x[1, 1] = (x[0, 1] + 1) % V
    with torch.no_grad():
        logits, _ = model(x)
    assert not torch.allclose(logits[0, -1], logits[1, -1], atol=1e-4)


@pytest.mark.parametrize("kind", RECURRENT)
def test_the_learned_start_state_is_where_every_item_begins(kind):
    model = model_of(kind)
    x = random_items(2, 3)
    with torch.no_grad():
        before = model(x)[0]
        model.start.add_(1.0)
        after = model(x)[0]
    assert not torch.allclose(before[:, 0], after[:, 0], atol=1e-4)


@pytest.mark.parametrize("kind", [*RECURRENT, "bow"])
def test_generation_state_does_not_grow_with_the_word(kind):
    model = model_of(kind)
    def shapes(state):
        return [s.shape for s in (state if isinstance(state, tuple) else (state,)) if isinstance(s, torch.Tensor)]

    tokens = torch.tensor([0, 0, 0])
    _, state = model.step(tokens, model.init_state(3))
    first = shapes(state)
    for _ in range(6):
        _, state = model.step(tokens + 1, state)
    assert shapes(state) == first


@pytest.mark.parametrize("kind", RECURRENT)
def test_dropout_acts_in_training_only(kind):
    model = model_of(kind, n_layer=2, dropout=0.5)
    x = random_items()
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])
        model.train()
        assert not torch.equal(model(x)[0], model(x)[0])


# ---- the bag of words ---------------------------------------------------------------------------------------


def test_bow_averages_the_embeddings_up_to_each_position():
    model = model_of("bow")
    x = random_items()
    with torch.no_grad():
        emb = model.wte.weight[x] + model.wpe.weight[: x.size(1)]
        expected = torch.stack([model.mix(emb[:, t], emb[:, : t + 1].mean(1)) for t in range(x.size(1))], dim=1)
        logits, _ = model(x)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_bow_block_size_fits_the_data_unless_set():
    assert model_of("bow", max_length=9).context_limit == 10
    assert model_of("bow", max_length=9, block_size=14).context_limit == 14
    with pytest.raises(ModelConfigError, match=r"^model\.block_size 9 .*at least 10"):
        model_of("bow", max_length=9, block_size=9)
    with pytest.raises(ModelConfigError, match=r"model\.block_size must be set"):
        create_model("bow", BoWConfig(), V, None)
    with pytest.raises(ValueError, match="reads at most 10"):
        model_of("bow", max_length=9)(random_items(2, 11))


def test_bow_words_stop_at_the_context_limit(tiny_data):
    torch.manual_seed(0)
    model = create_model("bow", BoWConfig(block_size=12, n_embd=8, n_embd2=16), tiny_data.vocab.size, 4)
    with torch.no_grad():
        model.head.bias[0] = -100.0  # never end a word: only the limit can stop it
    words = generate(model, tiny_data.vocab, 5, max_length=50, generator=torch.Generator().manual_seed(0))
    assert [len(w) for w in words] == [11] * 5


# ---- options ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RECURRENT)
def test_bad_options_name_the_key(kind):
    with pytest.raises(ModelConfigError, match=r"model\.dropout must be in \[0, 1\)"):
        create_model(kind, CONFIGS[kind](dropout=1.0), V, 9)
    with pytest.raises(ConfigError) as error:
        build_config(overrides={"model.type": kind, "model.dropout": 1.0, "model.n_layer": 0})
    message = str(error.value)
    assert "model.dropout must be in [0, 1)" in message and "model.n_layer must be at least 1" in message


def test_a_too_short_bow_block_size_is_one_line_exit_2(tmp_path, tiny_file, capsys):
    args = ["-i", str(tiny_file), "-o", str(tmp_path / "run"), "--type", "bow", "--block-size", "4", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.block_size 4" in err and "at least 11" in err, err


def test_makemore_py_command_line_for_a_recurrent_net(tiny_data, monkeypatch):
    runs = []
    monkeypatch.setattr("makemore.cli.commands.train_run", lambda cfg, **kw: runs.append(cfg) or {"samples": []})
    assert main(["-i", "names.txt", "-o", "names", "--type", "rnn", "--n-layer", "2", "--n-embd", "64",
                 "--n-embd2", "64"]) == 0
    cfg = runs[0]
    assert (cfg.model_type, cfg.model) == ("rnn", RNNConfig(n_embd=64, n_embd2=64, n_layer=2))
    model = create_model(cfg.model_type, cfg.model, tiny_data.vocab.size, tiny_data.max_item_length)
    assert (model.rnn.num_layers, model.rnn.hidden_size, model.wte.weight.size(1)) == (2, 64, 64)
