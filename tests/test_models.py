"""Every registered model: shapes, first loss, learning, checkpoint round trip; and the sequence path."""

import math

import pytest
import torch

from makemore import checkpoint
from makemore.data import Dataset
from makemore.evaluate import split_nll
from makemore.models import MODELS, Model, SequenceModel, WindowModel, create_model
from makemore.runs import build_config
from makemore.train import train
from tests.conftest import quick_config

SMALL = {"block_size": 4, "n_embd": 8, "n_embd2": 32, "n_layer": 2}  # applied where a model has the option


def small_model(model_type: str, vocab_size: int, max_length: int = 15) -> Model:
    """The registered model at a test-friendly size, built through the config like the CLI does."""
    options = MODELS[model_type].Config.__dataclass_fields__
    whole_items = issubclass(MODELS[model_type], SequenceModel)  # its block_size must hold the longest item: unset
    overrides = {f"model.{k}": v for k, v in SMALL.items() if k in options and not (whole_items and k == "block_size")}
    cfg = build_config(overrides={"model.type": model_type, **overrides})
    torch.manual_seed(0)
    return create_model(model_type, cfg.model, vocab_size, max_length)


def batch(model: Model, data: Dataset, n: int = 16):
    return model.examples(data.train).get(torch.arange(n))


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_output_shapes(model_type, tiny_data):
    model = small_model(model_type, tiny_data.vocab.size)
    x, y = batch(model, tiny_data)
    logits, loss = model(x, y)
    expected = (16, tiny_data.vocab.size) if isinstance(model, WindowModel) else (*x.shape, tiny_data.vocab.size)
    assert logits.shape == expected
    assert loss.dim() == 0
    assert model(x)[1] is None


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_fresh_model_loss_is_near_ln_vocab(model_type, tiny_data):
    model = small_model(model_type, tiny_data.vocab.size)
    assert split_nll(model, tiny_data.train) == pytest.approx(math.log(tiny_data.vocab.size), abs=0.3)


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_loss_falls_on_a_tiny_corpus(model_type, tiny_file, tmp_path):
    cfg = quick_config(tmp_path, model_type, tiny_file, **{"train.max_steps": 60, "train.warmup_steps": 0})
    cfg.train.lr = max(cfg.train.lr, 0.01)  # the model's own rate, but fast enough for 60 steps
    from makemore.data import load_dataset

    data = load_dataset(tiny_file, warn=lambda m: None)
    model = small_model(model_type, data.vocab.size)
    before = split_nll(model, data.train)
    (tmp_path / "run").mkdir()
    train(model, data, cfg, tmp_path / "run", progress=False, write=lambda m: None)
    assert split_nll(model, data.train) < before - 0.2


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_checkpoint_round_trip_gives_identical_logits(model_type, tiny_data, tmp_path):
    cfg = build_config(overrides={"model.type": model_type})
    model = small_model(model_type, tiny_data.vocab.size)
    cfg.model = model.config
    if not model.trainable:
        w = tiny_data.train.windows(model.block_size)
        model.fit(*w.get(torch.arange(len(w))))
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


class SequenceBigram(SequenceModel):
    """A sequence-shaped bigram: logits at every position from the character there."""

    def __init__(self, table: torch.Tensor):
        super().__init__(None, table.size(0))
        self.table = torch.nn.Parameter(table.clone())

    def forward(self, idx, targets=None):
        logits = self.table[idx]  # (B, T, V)
        return logits, self.loss(logits, targets)


def test_loss_per_character_is_the_same_for_windows_and_sequences(tiny_data):
    window = small_model("nbigram", tiny_data.vocab.size)
    with torch.no_grad():
        window.W.normal_()
    sequence = SequenceBigram(window.W.data)
    for split in tiny_data.splits.values():
        assert split_nll(sequence, split) == pytest.approx(split_nll(window, split), rel=1e-6)
        assert split_nll(sequence, split, batch_size=7) == pytest.approx(split_nll(window, split), rel=1e-6)


def step_logits(model: Model, items: list[str], vocab) -> list[torch.Tensor]:
    """Each item's logits (len + 1, V) from generation's step(), finished rows leaving the batch as the sampler does."""
    from makemore.data import encode_items

    x, _ = encode_items(items, vocab)
    lengths = torch.tensor([len(s) + 1 for s in items])
    out = [[] for _ in items]
    rows = torch.arange(len(items))  # the batch's rows, as indices into items
    state = model.init_state(len(items))
    for t in range(int(lengths.max())):
        logits, state = model.step(x[rows, t], state)
        for row, logit in zip(rows.tolist(), logits):
            out[row].append(logit)
        going = (lengths[rows] > t + 1).nonzero().squeeze(1)
        rows, state = rows[going], model.keep(state, going)
    return [torch.stack(rows) for rows in out]


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_step_by_step_logits_equal_the_full_forward(model_type, tiny_data):
    from makemore.checks import position_logits

    model = small_model(model_type, tiny_data.vocab.size, tiny_data.max_item_length)
    examples = model.examples(tiny_data.train)
    if not model.trainable:
        model.fit(*examples.get(torch.arange(len(examples))))
    for p in model.parameters():  # away from the initialization, where zeros can hide a wrong wiring
        p.data.add_(0.1 * torch.randn_like(p))
    model.eval()
    items = sorted(tiny_data.dev.items[:24], key=len) + ["a", max(tiny_data.train.items, key=len)]
    with torch.no_grad():
        full = position_logits(model, items, tiny_data.vocab)
        stepped = step_logits(model, items, tiny_data.vocab)
    for word, a, b in zip(items, full, stepped):
        assert a.shape == b.shape, word
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (word, (a - b).abs().max().item())
