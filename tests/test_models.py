"""Every registered model: shapes, first loss, learning, checkpoint round trip; and the sequence path."""

import math

import pytest
import torch

import makemore.sample as sample_module
from makemore import checkpoint
from makemore.data import BOUNDARY, Dataset
from makemore.evaluate import split_nll
from makemore.models import MODELS, Model, WindowModel, create_model
from makemore.runs import build_config
from makemore.sample import generate
from makemore.train import train
from tests.conftest import SequenceBigram, fitted, quick_config, small_model


def batch(model: Model, data: Dataset, n: int = 16):
    return model.examples(data.train).get(torch.arange(n))


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_output_shapes(model_type, tiny_data):
    model = small_model(model_type, tiny_data.vocab.size, tiny_data.max_item_length)
    x, y = batch(model, tiny_data)
    logits, loss = model(x, y)
    expected = (16, tiny_data.vocab.size) if isinstance(model, WindowModel) else (*x.shape, tiny_data.vocab.size)
    assert logits.shape == expected
    assert loss.dim() == 0
    assert model(x)[1] is None


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_fresh_model_loss_is_near_ln_vocab(model_type, tiny_data):
    model = small_model(model_type, tiny_data.vocab.size, tiny_data.max_item_length)
    assert split_nll(model, tiny_data.train) == pytest.approx(math.log(tiny_data.vocab.size), abs=0.3)


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_loss_falls_on_a_tiny_corpus(model_type, tiny_file, tmp_path):
    cfg = quick_config(tmp_path, model_type, tiny_file, **{"train.max_steps": 60, "train.warmup_steps": 0})
    cfg.train.lr = max(cfg.train.lr, 0.01)  # the model's own rate, but fast enough for 60 steps
    from makemore.data import load_dataset

    data = load_dataset(tiny_file, warn=lambda m: None)
    model = small_model(model_type, data.vocab.size, data.max_item_length)
    before = split_nll(model, data.train)
    (tmp_path / "run").mkdir()
    train(model, data, cfg, tmp_path / "run", progress=False, write=lambda m: None)
    assert split_nll(model, data.train) < before - 0.2


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_checkpoint_round_trip_gives_identical_logits(model_type, tiny_data, tmp_path):
    cfg = build_config(overrides={"model.type": model_type})
    model = small_model(model_type, tiny_data.vocab.size, tiny_data.max_item_length)
    cfg.model = model.config
    fitted(model, tiny_data)
    path = tmp_path / "model.pt"
    checkpoint.save(path, checkpoint.make_state(cfg, tiny_data, model))
    _, data2, model2 = checkpoint.restore(checkpoint.load(path))
    model.eval()
    model2.eval()
    x, _ = batch(model, tiny_data)
    assert torch.equal(model(x)[0], model2(x)[0])
    assert data2.train.items == tiny_data.train.items and data2.vocab == tiny_data.vocab


def test_unknown_model_lists_valid_ones():
    from makemore.models import ModelConfigError

    with pytest.raises(ModelConfigError, match="valid types: .*mlp"):
        create_model("nope", None, 27)


def test_loss_per_character_is_the_same_for_windows_and_sequences(tiny_data):
    window = small_model("nbigram", tiny_data.vocab.size, tiny_data.max_item_length)
    with torch.no_grad():
        window.W.normal_()
    sequence = SequenceBigram(window.W.data)
    for split in tiny_data.splits.values():
        assert split_nll(sequence, split) == pytest.approx(split_nll(window, split), rel=1e-6)
        assert split_nll(sequence, split, batch_size=7) == pytest.approx(split_nll(window, split), rel=1e-6)


def step_logits(model: Model, items: list[str], vocab, monkeypatch) -> list[torch.Tensor]:
    """Each item's logits (len + 1, V) as the sampler sees them: generate() itself, its draw forced to spell items.

    The sampler drops a row from its batch when the row's word ends (model.keep); the rows still writing
    at step t are the items not ended before it, in order, so the forced draw knows whose logits it holds.
    """
    ids = [vocab.encode(s) + [BOUNDARY] for s in items]
    out = [[] for _ in items]

    def spell(logits, *args, **kwargs):
        t = len(out[alive[0]]) if (alive := [i for i in range(len(items)) if len(out[i]) < len(ids[i])]) else 0
        assert len(logits) == len(alive), "the sampler's batch is not the rows still writing"
        for i, row in zip(alive, logits):
            out[i].append(row.clone())
        return torch.tensor([ids[i][t] for i in alive], device=logits.device)

    monkeypatch.setattr(sample_module, "draw", spell)
    words = generate(model, vocab, len(items), max(len(s) for s in items))
    assert words == items  # the forced draw spelled every item, ending each where it ends
    return [torch.stack(rows) for rows in out]


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_step_by_step_logits_equal_the_full_forward(model_type, tiny_data, monkeypatch):
    from makemore.checks import position_logits

    model = small_model(model_type, tiny_data.vocab.size, tiny_data.max_item_length)
    fitted(model, tiny_data)
    for p in model.parameters():  # away from the initialization, where zeros can hide a wrong wiring
        p.data.add_(0.1 * torch.randn_like(p))
    model.eval()
    items = sorted(tiny_data.dev.items[:24], key=len) + ["a", max(tiny_data.train.items, key=len)]
    with torch.no_grad():
        full = position_logits(model, items, tiny_data.vocab)
        stepped = step_logits(model, items, tiny_data.vocab, monkeypatch)
    for word, a, b in zip(items, full, stepped):
        assert a.shape == b.shape, word
        assert b[0, BOUNDARY] == float("-inf"), word  # the sampler never ends a word before its first character
        b = b.clone()
        b[0, BOUNDARY] = a[0, BOUNDARY]  # the mask aside, the sampler's logits are the full forward's
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (word, (a - b).abs().max().item())
