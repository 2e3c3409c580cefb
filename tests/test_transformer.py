"""The Transformer: its position table fits the data, its options are checked, its samples stay within reach."""

import pytest
import torch

from makemore.cli import main
from makemore.data import load_dataset
from makemore.models import ModelConfigError, create_model
from makemore.models.transformer import TransformerConfig
from makemore.sample import generate


def test_position_table_defaults_to_the_longest_item_plus_one(tiny_data):
    model = create_model("transformer", TransformerConfig(n_embd=8, n_head=2), tiny_data.vocab.size,
                         tiny_data.max_item_length)
    assert model.block_size == model.context_limit == tiny_data.max_item_length + 1
    assert model.wpe.weight.shape == (tiny_data.max_item_length + 1, 8)


def test_makemore_py_size_has_its_parameter_count():
    # makemore.py's defaults on names.txt (27 tokens, 16 positions): about 204K parameters
    model = create_model("transformer", TransformerConfig(), 27, 15)
    assert model.num_params() == 204_544


@pytest.mark.parametrize("options, key, hint", [
    ({"block_size": 10}, "model.block_size 10", "at least 16"),
    ({"n_head": 5}, "model.n_head 5", "1, 2, 4, 8"),
    ({"dropout": 1.0}, "model.dropout", "[0, 1)"),
    ({"dropout": -0.1}, "model.dropout", "[0, 1)"),
])
def test_impossible_options_are_one_line_errors(options, key, hint):
    with pytest.raises(ModelConfigError) as e:
        create_model("transformer", TransformerConfig(**options), 27, 15)
    assert key in str(e.value) and hint in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("flags, key", [(["--block-size", "4"], "model.block_size"),
                                        (["--n-head", "3"], "model.n_head"),
                                        (["--dropout", "1.5"], "model.dropout")])
def test_cli_refuses_them_with_exit_2_before_touching_the_run_folder(flags, key, tmp_path, tiny_file, capsys):
    work = tmp_path / "run"
    assert main(["-i", str(tiny_file), "-o", str(work), "--type", "transformer", "--n-embd", "8",
                 "--max-steps", "2", "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert key in err and len(err.splitlines()) == 1
    assert not work.exists()


def test_samples_never_run_past_the_position_table(tiny_file):
    data = load_dataset(tiny_file, warn=lambda m: None)
    torch.manual_seed(0)
    model = create_model("transformer", TransformerConfig(n_embd=8, n_head=2), data.vocab.size,
                         data.max_item_length)
    with torch.no_grad():  # the final norm outputs ones, the head scores the end -8: every word runs on
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.head.weight.zero_()
        model.head.weight[0].fill_(-1.0)
    words = generate(model, data.vocab, 5, max_length=100, generator=torch.Generator().manual_seed(0))
    assert {len(w) for w in words} == {model.block_size - 1}
    longer = generate(model, data.vocab, 2, max_length=100, prefix="ab", generator=torch.Generator().manual_seed(0))
    assert all(len(w) == model.block_size - 1 and w.startswith("ab") for w in longer)


def test_makemore_py_command_lines(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "names")
    assert main(["-i", str(tiny_file), "-o", work, "--type", "transformer", "--n-layer", "2", "--n-head", "2",
                 "--n-embd", "16", "--max-steps", "10", "--no-progress"]) == 0
    resolved = (tmp_path / "names" / "config.yaml").read_text()
    assert all(f in resolved for f in ("type: transformer", "n_layer: 2", "n_head: 2", "n_embd: 16"))
    capsys.readouterr()
    assert main(["-i", str(tiny_file), "-o", work, "--sample-only"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 20
