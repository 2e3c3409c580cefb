"""The n-gram, batch-norm MLP and WaveNet: exact n-gram probabilities, eval mode everywhere, config errors."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

from makemore import checkpoint
from makemore.cli import main
from makemore.config import ConfigError
from makemore.data import PAD, Dataset, Vocab
from makemore.evaluate import split_nll
from makemore.models import ModelConfigError, create_model
from makemore.models.bigram import BigramConfig
from makemore.models.bnmlp import BNMLPConfig
from makemore.models.layers import BatchNorm1d
from makemore.models.ngram import NgramConfig
from makemore.models.wavenet import WaveNetConfig
from makemore.runs import build_config, train_run
from makemore.sample import generate
from makemore.train import Batches
from tests.conftest import fitted, quick_config


def all_contexts(vocab_size: int, width: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(vocab_size), repeat=width)), dtype=torch.long)


# ---- n-gram -------------------------------------------------------------------------------------------


def reference_ngram(items, vocab, n, method, k=1.0):
    """The n-gram written plainly with dicts, to check the vectorized model.

    method "kneser-ney" / "witten-bell": interpolated smoothing; "add-k": order n alone (interpolate:
    false), add-k over the n-grams of the items padded with n-1 boundaries, uniform for an unseen context.
    """
    v = vocab.size
    counts = [Counter() for _ in range(n + 1)]  # counts[k][(context..., next)]
    for word in items:
        seq = [0] * (n - 1) + vocab.encode(word) + [0]
        for t in range(n - 1, len(seq)):
            for order in range(1, n + 1):
                gram = tuple(seq[t - order + 1:t + 1])
                if method != "add-k" and order >= 2 and gram[0] == gram[1] == 0:
                    continue  # interpolated: two boundaries say no more than one, the shorter context has it
                counts[order][gram] += 1
    if method == "kneser-ney":  # lower orders count distinct left neighbours, unless only the boundary is left
        for order in range(1, n):
            left = Counter(gram[1:] for gram in counts[order + 1])
            counts[order] = Counter({g: left[g] if left[g] else c for g, c in counts[order].items()})
    tables = []
    for order in range(n + 1):
        total, distinct = Counter(), Counter()
        for gram, c in counts[order].items():
            total[gram[:-1]] += c
            distinct[gram[:-1]] += 1
        coc = Counter(counts[order].values())
        y = coc[1] / max(coc[1] + 2 * coc[2], 1)
        disc = [0.0] + [min(max(i - (i + 1) * y * coc[i + 1] / max(coc[i], 1), 1e-3), i) for i in (1, 2, 3)]
        mass = Counter()  # what the discounts take from each context, for the next lower order
        for gram, c in counts[order].items():
            mass[gram[:-1]] += disc[min(c, 3)]
        tables.append((counts[order], total, distinct, disc, mass))

    def prob(context, w):
        if method == "add-k":
            grams, total = tables[n][0], tables[n][1]
            h = tuple(context[len(context) - n + 1:]) if n > 1 else ()
            if total[h] == 0:
                return 1 / v
            return (grams.get(h + (w,), 0) + k) / (total[h] + k * v)
        p = 1 / v
        for order in range(1, n + 1):
            grams, total, distinct, disc, mass = tables[order]
            h = tuple(context[len(context) - order + 1:]) if order > 1 else ()
            if total[h] == 0:
                break
            c = grams.get(h + (w,), 0)
            if method == "witten-bell":
                p = (c + distinct[h] * p) / (total[h] + distinct[h])
            else:
                p = max(c - disc[min(c, 3)], 0) / total[h] + mass[h] / total[h] * p
        return p

    return prob


CASES = [("kneser-ney", {}), ("witten-bell", {"method": "witten-bell"}), ("add-k", {"interpolate": False}),
         ("add-k", {"interpolate": False, "smoothing": 0.0})]


@pytest.mark.parametrize("n", [2, 3, 5, 7])
@pytest.mark.parametrize("method,options", CASES, ids=["kneser-ney", "witten-bell", "add-1", "add-0"])
def test_ngram_matches_a_plain_reference(tiny_data, method, options, n):
    model = fitted(create_model("ngram", NgramConfig(n=n, **options), tiny_data.vocab.size), tiny_data)
    windows = tiny_data.dev.windows(model.block_size)
    words = tiny_data.dev.items[:6]  # every position of a few whole items: word starts are padded contexts
    contexts = torch.cat([windows.source[windows.start[:sum(len(s) + 1 for s in words), None] + windows.offsets],
                          torch.randint(tiny_data.vocab.size, (20, model.block_size)),  # seen and unseen ones
                          torch.zeros(1, model.block_size, dtype=torch.long)])
    prob = reference_ngram(tiny_data.train.items, tiny_data.vocab, n, method, options.get("smoothing", 1.0))
    expected = torch.tensor([[prob(ctx, w) for w in range(tiny_data.vocab.size)] for ctx in contexts.tolist()],
                            dtype=torch.float64)
    torch.testing.assert_close(model.probs(contexts).double(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kw", [{"n": 1}, {"n": 3}, {"n": 3, "method": "witten-bell"}, {"n": 3, "discount": 0.5},
                                {"n": 3, "interpolate": False}, {"n": 3, "interpolate": False, "smoothing": 0.0}])
def test_ngram_probabilities_sum_to_one_for_every_context(tiny_data, kw):
    v = tiny_data.vocab.size
    model = fitted(create_model("ngram", NgramConfig(**kw), v), tiny_data)
    p = model.probs(all_contexts(v, model.block_size))  # every possible context, seen in training or not
    torch.testing.assert_close(p.sum(1), torch.ones(len(p)), rtol=0, atol=1e-5)
    assert (p >= 0).all()
    if kw.get("smoothing", 1.0) > 0:
        assert (p > 0).all()  # smoothed: nothing is impossible


def test_ngram_larger_orders_on_seen_contexts(tiny_data):
    for n in (6, 10):
        model = fitted(create_model("ngram", NgramConfig(n=n), tiny_data.vocab.size), tiny_data)
        windows = tiny_data.train.windows(model.block_size)
        x, y = windows.get(torch.arange(len(windows)))
        p = model.probs(x)
        torch.testing.assert_close(p.sum(1), torch.ones(len(p)), rtol=0, atol=1e-5)
    nll = [split_nll(fitted(create_model("ngram", NgramConfig(n=n), tiny_data.vocab.size), tiny_data),
                     tiny_data.train) for n in (1, 2, 3, 5)]
    assert nll == sorted(nll, reverse=True)  # longer contexts fit the training data more closely


@pytest.mark.parametrize("k", [1.0, 0.5])
def test_ngram_of_order_two_without_interpolation_is_the_bigram(tiny_data, k):
    v = tiny_data.vocab.size
    ngram = fitted(create_model("ngram", NgramConfig(n=2, interpolate=False, smoothing=k), v), tiny_data)
    bigram = fitted(create_model("bigram", BigramConfig(smoothing=k), v), tiny_data)
    contexts = all_contexts(v, 1)
    torch.testing.assert_close(ngram(contexts)[0].exp(), bigram(contexts)[0].exp(), rtol=1e-5, atol=1e-7)
    assert split_nll(ngram, tiny_data.dev) == pytest.approx(split_nll(bigram, tiny_data.dev), rel=1e-6)


def test_count_models_without_smoothing_give_a_held_out_only_character_a_uniform_row(tiny_items):
    """smoothing 0: a character that only dev/test hold has no counts; its row must not be 0/0 = NaN."""
    train, dev, test = tiny_items[:240], tiny_items[240:270] + ["qxq"], tiny_items[270:]
    train = [w for w in train if "q" not in w]
    data = Dataset.from_splits(Vocab.from_items(train + dev + test), train, dev, test)
    q = data.vocab.encode("q")[0]
    v = data.vocab.size
    for name, config in (("bigram", BigramConfig(smoothing=0.0)),
                         ("ngram", NgramConfig(n=2, interpolate=False, smoothing=0.0))):
        model = fitted(create_model(name, config, v), data)
        p = model(torch.tensor([[q]]))[0].exp()
        torch.testing.assert_close(p, torch.full((1, v), 1 / v)), name
        seen = model(torch.tensor([[0]]))[0].exp()
        assert seen.sum().item() == pytest.approx(1.0) and (seen == 0).any()  # no smoothing where counts exist
        words = generate(model, data.vocab, 20, 10, prefix="q", generator=torch.Generator().manual_seed(0))
        assert len(words) == 20 and all(w.startswith("q") for w in words)


def test_ngram_unfitted_is_uniform_and_round_trips_through_a_checkpoint(tmp_path, tiny_file, tiny_data):
    v = tiny_data.vocab.size
    fresh = create_model("ngram", NgramConfig(n=4), v)
    x = torch.randint(v, (5, 3))
    torch.testing.assert_close(fresh.probs(x), torch.full((5, v), 1 / v))
    cfg = quick_config(tmp_path, "ngram", tiny_file, **{"model.n": 4})
    results = train_run(cfg, progress=False, write=lambda *a: None)
    state = checkpoint.load(tmp_path / "run" / "model.pt")
    _, data, model = checkpoint.restore(state)  # a fresh model takes the saved tables, whatever their size
    assert model.num_params() == results["params"] > v
    assert split_nll(model, data.dev) == pytest.approx(results["dev"]["nll"], rel=1e-9)
    words = generate(model, data.vocab, 300, 30, generator=torch.Generator().manual_seed(0))
    assert len(words) == 300 and all(set(w) <= set(data.vocab.chars) for w in words)
    assert len(set(words) & set(data.train.items)) > 10  # a 4-gram of 240 names mostly repeats them


def test_ngram_config_problems():
    with pytest.raises(ConfigError) as e:
        build_config(overrides={"model.type": "ngram", "model.n": 11, "model.discount": 1.5})
    assert "model.n must be between 1 and 10" in str(e.value) and "model.discount" in str(e.value)
    with pytest.raises(ModelConfigError, match="model.n"):
        create_model("ngram", NgramConfig(n=0), 27)


# ---- batch-norm MLP and WaveNet ------------------------------------------------------------------------

NEURAL = [("bnmlp", BNMLPConfig(block_size=4, n_embd=8, n_embd2=32, n_layer=2)),
          ("wavenet", WaveNetConfig(block_size=4, n_embd=8, n_embd2=32, n_layer=2))]


def trained(name, config, data, steps=30):
    """A model after a few training steps, so its running statistics are no longer the initial ones."""
    torch.manual_seed(0)
    model = create_model(name, config, data.vocab.size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batches = Batches(data.train, model, 64, seed=0)
    for _ in range(steps):
        _, loss = model(*batches.next())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("name", ["bnmlp", "wavenet"])
def test_first_loss_is_near_uniform(tiny_data, name):
    torch.manual_seed(0)
    model = create_model(name, {"bnmlp": BNMLPConfig, "wavenet": WaveNetConfig}[name](), tiny_data.vocab.size)
    x, y = Batches(tiny_data.train, model, 256, seed=0).next()
    assert model(x, y)[1].item() == pytest.approx(math.log(tiny_data.vocab.size), abs=0.1)


def test_wavenet_builds_for_a_fusable_block_size_only():
    model = create_model("wavenet", WaveNetConfig(block_size=8, n_layer=3), 27)
    assert model(torch.randint(27, (5, 8)))[0].shape == (5, 27)
    assert create_model("wavenet", WaveNetConfig(block_size=16, n_layer=4), 27).block_size == 16
    with pytest.raises(ModelConfigError, match=r"block_size must be 2\*\*n_layer, so 8 with n_layer 3;"):
        create_model("wavenet", WaveNetConfig(block_size=10, n_layer=3), 27)
    with pytest.raises(ModelConfigError, match="keep block_size 16 with n_layer 4"):
        create_model("wavenet", WaveNetConfig(block_size=16, n_layer=3), 27)
    with pytest.raises(ConfigError, match="block sizes that work: 2, 4, 8, 16"):
        build_config(overrides={"model.type": "wavenet", "model.block_size": 6})


def test_wavenet_mismatch_is_a_cli_config_error(tmp_path, capsys):
    code = main(["--type", "wavenet", "--block-size", "12", "-o", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "block_size" in err and "Traceback" not in err


@pytest.mark.parametrize("n_layer", [3, 4])
def test_wavenet_steps_through_words_longer_than_its_window_as_the_forward_reads_them(tiny_data, n_layer):
    # generation carries one queue of past nodes per level; the forward re-reads each padded window
    model = trained("wavenet", WaveNetConfig(block_size=2**n_layer, n_embd=8, n_embd2=32, n_layer=n_layer),
                    tiny_data).eval()
    torch.manual_seed(1)
    x = torch.cat([torch.zeros(5, 1, dtype=torch.long), torch.randint(1, tiny_data.vocab.size, (5, 39))], dim=1)
    padded = torch.cat([torch.zeros(5, model.block_size - 1, dtype=torch.long), x], dim=1)
    windows = padded.unfold(1, model.block_size, 1)  # (5, 40, block_size): the window ending at each position
    state = model.init_state(5)
    assert [len(q) for q in state["queues"]] == [2**i for i in range(n_layer)]
    with torch.no_grad():
        for t in range(x.size(1)):
            logits, state = model.step(x[:, t], state)
            assert torch.allclose(logits, model(windows[:, t])[0], atol=1e-5, rtol=1e-5), t


def test_windows_hold_only_real_targets(tiny_data):
    # batch norm sees exactly the rows of the windows: one per real character, never padding past a word's end
    for split in tiny_data.splits.values():
        for block_size in (1, 4, 8):
            windows = split.windows(block_size)
            assert len(windows) == split.num_targets
            assert (windows.targets != PAD).all() and (windows.source >= 0).all()
    x, y = Batches(tiny_data.train, create_model("bnmlp", BNMLPConfig(), tiny_data.vocab.size), 500, 0).next()
    assert (y >= 0).all() and (x >= 0).all()


@pytest.mark.parametrize(("name", "config"), NEURAL, ids=[n for n, _ in NEURAL])
def test_evaluation_runs_in_eval_mode_and_does_not_depend_on_batching(tiny_data, name, config):
    model = trained(name, config, tiny_data)
    seen = []
    for layer in model.modules():
        if isinstance(layer, BatchNorm1d):
            layer.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    model.train()
    nll = [split_nll(model, tiny_data.dev, batch_size=b) for b in (1, 7, 100, 100_000)]
    assert seen and not any(seen)  # every batch-norm call used the running statistics
    assert model.training  # and the caller's mode is given back
    assert max(nll) - min(nll) < 1e-5  # float32 rounding only; batch statistics would move it by 1e-2
    # the bug this guards against: batch statistics of a training-mode pass give another number
    windows = tiny_data.dev.windows(model.block_size)
    with torch.no_grad():
        _, train_mode_loss = model(*windows.get(torch.arange(7)))
        model.eval()
        _, eval_mode_loss = model(*windows.get(torch.arange(7)))
    assert abs(train_mode_loss.item() - eval_mode_loss.item()) > 1e-4


@pytest.mark.parametrize(("name", "config"), NEURAL, ids=[n for n, _ in NEURAL])
def test_sampling_runs_in_eval_mode(tiny_data, name, config):
    model = trained(name, config, tiny_data)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # one word alone: a training-mode batch norm cannot even normalize a batch of one
    assert len(generate(model, tiny_data.vocab, 1, 20, generator=torch.Generator().manual_seed(3))) == 1
    assert len(generate(model, tiny_data.vocab, 64, 20, generator=torch.Generator().manual_seed(3))) == 64
    assert model.training
    for key, value in model.state_dict().items():  # running statistics are read, never updated, by sampling
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("name", ["bnmlp", "wavenet"])
def test_neural_models_train_and_round_trip(tmp_path, tiny_file, name):
    overrides = {"model.block_size": 4, "model.n_embd": 8, "model.n_embd2": 32, "model.n_layer": 2,
                 "train.warmup_steps": 0, "train.lr": 1e-2}
    results = train_run(quick_config(tmp_path, name, tiny_file, **overrides), progress=False, write=lambda *a: None)
    _, data, model = checkpoint.restore(checkpoint.load(tmp_path / "run" / "model.pt"))
    assert results["dev"]["nll"] < math.log(data.vocab.size) - 0.3  # it learned something
    bn = next(m for m in model.modules() if isinstance(m, BatchNorm1d))
    assert not torch.all(bn.running_mean == 0)  # running statistics are saved with the weights
    assert split_nll(model, data.dev) == pytest.approx(results["dev"]["nll"], rel=1e-9)
