"""The dilated-convolution WaveNet: receptive field, padding, generation queues, dropout, bad options."""

from __future__ import annotations

import pytest
import torch

from makemore.cli import main
from makemore.config import ConfigError
from makemore.models import ModelConfigError, create_model
from makemore.models.convnet import ConvNetConfig
from makemore.runs import build_config

V = 27


def model_at(seed: int = 0, **options) -> torch.nn.Module:
    """A small convnet in eval mode, its parameters moved off the initialization (where zeros hide wiring)."""
    torch.manual_seed(seed)
    model = create_model("convnet", ConvNetConfig(n_embd=8, n_embd2=16, **options), V, 30)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("n_layer, n_stack, field", [(1, 1, 2), (2, 1, 4), (3, 1, 8), (2, 2, 7), (3, 2, 15)])
def test_prediction_reads_exactly_the_receptive_field(n_layer, n_stack, field):
    model = model_at(n_layer=n_layer, n_stack=n_stack)
    assert model.receptive_field == field
    x = torch.randint(1, V, (1, 24))
    base = model(x)[0][0]  # (T, V)
    for t in range(field, 24):  # positions whose field starts inside the word
        for j, inside in ((t - field + 1, True), (t - field, False)):
            changed = x.clone()
            changed[0, j] = changed[0, j] % (V - 1) + 1  # another character
            moved = (model(changed)[0][0, t] - base[t]).abs().max().item()
            assert (moved > 1e-4) if inside else (moved == 0.0), (t, j, moved)


def test_predictions_ignore_later_positions_and_how_far_the_batch_is_padded():
    model = model_at(n_layer=3)
    x = torch.randint(1, V, (1, 12))
    x[0, 0] = 0
    later = x.clone()
    later[0, 5:] = torch.randint(1, V, (7,))
    assert torch.equal(model(x)[0][0, :5], model(later)[0][0, :5])
    assert torch.allclose(model(x[:, :5])[0][0], model(x)[0][0, :5], atol=1e-6)


def test_step_reads_one_position_a_layer_and_matches_the_forward_past_the_field():
    model = model_at(n_layer=3, n_stack=2, dropout=0.3)  # receptive field 15; dropout is off in eval
    x = torch.randint(1, V, (3, 40))
    x[:, 0] = 0
    state = model.init_state(3)
    sizes = [[tuple(x.shape) for x in queue] for queue in state]
    assert sizes == [[(3, 16)] * d for d in (1, 2, 4) * 2]  # one queue a layer, as long as its dilation
    with torch.no_grad():
        full = model(x)[0]
        for t in range(40):
            logits, state = model.step(x[:, t], state)
            assert torch.allclose(logits, full[:, t], atol=1e-5, rtol=1e-5), t
            assert [[tuple(x.shape) for x in queue] for queue in state] == sizes  # it never grows with the prefix


def test_dropout_is_random_in_training_and_off_in_eval():
    model = model_at(dropout=0.5)
    x = torch.randint(V, (4, 10))
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


@pytest.mark.parametrize("options, key", [({"dropout": 1.0}, "model.dropout"), ({"dropout": -0.1}, "model.dropout"),
                                          ({"n_layer": 0}, "model.n_layer"), ({"n_layer": 11}, "model.n_layer"),
                                          ({"n_stack": 0}, "model.n_stack"), ({"n_embd2": 0}, "model.n_embd2")])
def test_bad_options_are_one_line_errors_naming_the_key(options, key):
    with pytest.raises(ModelConfigError, match=key) as err:
        create_model("convnet", ConvNetConfig(**options), V)
    assert "\n" not in str(err.value)
    overrides = {"model.type": "convnet", **{f"model.{k}": v for k, v in options.items()}}
    with pytest.raises(ConfigError, match=key):
        build_config(overrides=overrides)


def test_bad_option_is_a_cli_config_error(tmp_path, capsys):
    code = main(["--type", "convnet", "--dropout", "1.5", "-o", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.dropout" in err and "Traceback" not in err
