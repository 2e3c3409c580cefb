"""Labelled data: reading LABEL<TAB>ITEM, every model family conditioned on the label, sampling, scoring,
classifying and evaluating by label."""

from __future__ import annotations

import json
import math

import pytest
import torch

import makemore
from makemore.cli import main
from makemore.data import DataError
from makemore.labeled import load_labeled, read_labeled
from makemore.models import MODELS
from makemore.sample import generate_ended
from tests.conftest import small_model


@pytest.fixture(scope="session")
def labelled_lines(tiny_items) -> list[str]:
    """Two labels that spell differently: real first names, and the same names with every letter twice."""
    return [f"first\t{w}" for w in tiny_items] + [f"twice\t{''.join(c + c for c in w)}" for w in tiny_items]


@pytest.fixture
def labelled_file(tmp_path, labelled_lines):
    path = tmp_path / "labelled.txt"
    path.write_text("\n".join(labelled_lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def labelled_run(tmp_path_factory, labelled_lines):
    """A quick LSTM on the labelled file, trained once for the module."""
    root = tmp_path_factory.mktemp("labels")
    (root / "labelled.txt").write_text("\n".join(labelled_lines) + "\n", encoding="utf-8")
    return makemore.train(input=str(root / "labelled.txt"), labeled=True, type="lstm", n_embd=16, n_embd2=32,
                          max_steps=150, eval_interval=150, batch_size=64, lr=1e-2, work_dir=str(root / "run"),
                          progress=False)


@pytest.mark.parametrize("text, pattern", [
    ("F\tanna\nbob\n", r"line 2: has no tab"),
    ("F\tanna\n\tbob\n", r"line 2: has an empty label"),
    ("F\tanna\nF\t \n", r"line 2: has an empty item"),
    ("F\tanna\nF\tbea\n\nM\tbob\n", r"line 4: label 'M' has only this item"),
])
def test_bad_labelled_lines_are_errors_with_their_line(tmp_path, text, pattern):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=pattern):
        read_labeled(path)


def test_labeled_on_a_plain_file_is_one_line_and_writes_nothing(tmp_path, tiny_file, capsys):
    work = tmp_path / "run"
    assert main(["--input", str(tiny_file), "--labeled", "--work-dir", str(work), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "line 1: has no tab" in err and "LABEL<TAB>ITEM" in err
    assert not (work / "model.pt").exists()


def test_the_split_is_seeded_and_every_label_has_train_items(labelled_file):
    a, b = (load_labeled(labelled_file, warn=lambda m: None) for _ in range(2))
    assert a.labels == ["first", "twice"]
    for name in ("train", "dev", "test"):
        assert a.splits[name].items == b.splits[name].items
        assert torch.equal(a.splits[name].labels, b.splits[name].labels)
    counts = torch.bincount(a.train.labels).tolist()
    assert counts == [240, 240]  # each label cut 80/10/10 on its own
    other = load_labeled(labelled_file, seed=7, warn=lambda m: None)
    assert other.train.items != a.train.items


def test_labelled_windows_and_sequences_carry_the_label_first(labelled_file):
    data = load_labeled(labelled_file, warn=lambda m: None)
    first = data.labels.index("first")
    rows = (data.train.labels == first).nonzero().flatten()[:3]
    x, _ = data.train.sequences().get(rows)
    assert x[:, 0].tolist() == [first] * 3
    windows = data.train.windows(3)
    wx, _ = windows.get(torch.arange(len(windows)))
    assert wx.shape[1] == 4 and set(wx[:, 0].tolist()) == {0, 1}


NEURAL = [t for t in MODELS if t not in ("bigram", "ngram")]


def labelled_model(model_type, data):
    """A small labelled model in eval mode with its label vectors set apart (they start at zero)."""
    model = small_model(model_type, data.vocab.size, data.max_item_length)
    model.attach_labels(data.labels)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "label" in name:
                p.normal_()
    return model.eval()


def full_logits(model, label: int, ids: list[int]) -> torch.Tensor:
    """Next-character logits after each token of ids (the start token first), by forward on the whole word."""
    if model.kind == "window":  # one window a position
        b = model.block_size
        padded = [0] * (b - 1) + ids
        return model(torch.tensor([[label, *padded[i:i + b]] for i in range(len(ids))]))[0]
    return model(torch.tensor([[label, *ids]]))[0][0]


@pytest.mark.parametrize("model_type", NEURAL)
def test_every_neural_family_reads_the_label_at_every_position(model_type, labelled_file):
    """With label vectors set apart, a position far from the word's start gets different logits by label."""
    data = load_labeled(labelled_file, warn=lambda m: None)
    model = labelled_model(model_type, data)
    examples = model.examples(data.train)
    if examples.width == 1:  # a window wholly inside a word: the label is nowhere in its characters
        x, _ = examples.get(torch.arange(len(examples)))
        x = x[(x[:, 1:] != 0).all(1)][:1]
    else:
        x, _ = examples.get(torch.tensor([next(i for i, w in enumerate(data.train.items) if len(w) >= 7)]))
    a, b = x.clone(), x.clone()
    a[:, 0], b[:, 0] = 0, 1
    la, lb = model(a)[0], model(b)[0]
    if la.dim() == 3:
        la, lb = la[:, -1], lb[:, -1]
    assert not torch.allclose(la, lb), "the label does not reach a late position"


@pytest.mark.parametrize("model_type", NEURAL)
def test_labelled_generation_steps_equal_the_full_forward(model_type, labelled_file):
    """init_state(n, labels)/step/keep give the same next-character logits as forward on the whole word."""
    data = load_labeled(labelled_file, warn=lambda m: None)
    model = labelled_model(model_type, data)
    ids, labels = [0] + data.vocab.encode("annabelle"), torch.tensor([0, 1, 1])
    with torch.no_grad():
        state, stepped = model.init_state(3, labels=labels), []
        for t in ids:
            logits, state = model.step(torch.full((3,), t), state)
            stepped.append(logits)
        state = model.keep(state, torch.tensor([2, 0]))  # rows dropped and reordered: their labels go with them
        after, _ = model.step(torch.full((2,), 1), state)
        for row, label in enumerate(labels.tolist()):
            full = full_logits(model, label, ids)
            assert torch.allclose(torch.stack([s[row] for s in stepped]), full, atol=1e-4)
        for row, label in enumerate([1, 0]):
            assert torch.allclose(after[row], full_logits(model, label, [*ids, 1])[-1], atol=1e-4)


@pytest.mark.parametrize("model_type", ["bigram", "ngram"])
def test_count_models_blend_each_label_with_the_pooled_counts(model_type, labelled_file):
    data = load_labeled(labelled_file, warn=lambda m: None)
    model = small_model(model_type, data.vocab.size, data.max_item_length)
    model.attach_labels(data.labels)
    examples = model.examples(data.train)
    model.fit(*examples.get(torch.arange(len(examples))))
    w = model.config.label_weight
    pooled = small_model(model_type, data.vocab.size, data.max_item_length)
    x, y = examples.get(torch.arange(len(examples)))
    pooled.fit(x[:, 1:], y)
    alone = small_model(model_type, data.vocab.size, data.max_item_length)
    rows = x[:, 0] == 1
    alone.fit(x[rows, 1:], y[rows])
    probe = x[rows][:50]
    got = model(probe)[0].exp()
    want = w * alone(probe[:, 1:])[0].exp() + (1 - w) * pooled(probe[:, 1:])[0].exp()
    assert torch.allclose(got, want, atol=1e-6)


def test_a_labelled_model_with_zero_label_vectors_equals_the_unlabelled_one(labelled_file):
    """The label vectors start at zero: a labelled model starts exactly where the unlabelled one does."""
    data = load_labeled(labelled_file, warn=lambda m: None)
    plain = small_model("transformer", data.vocab.size, data.max_item_length).eval()
    labelled = small_model("transformer", data.vocab.size, data.max_item_length).eval()
    labelled.attach_labels(data.labels)
    x, _ = data.train.sequences().get(torch.arange(5))
    assert torch.equal(labelled(x)[0], plain(x[:, 1:])[0])


def test_conditioning_helps_and_samples_read_like_their_label(labelled_run):
    results = labelled_run.evaluate()
    per = results["labels"]
    assert set(per) == {"first", "twice"}
    # the whole split's NLL is the target-weighted mean of the labels' (eval counts the same targets)
    dev = labelled_run.data.dev
    weights = [sum(len(w) + 1 for w, la in zip(dev.items, dev.labels.tolist()) if la == i) for i in range(2)]
    mean = sum(per[label]["dev"] * n for label, n in zip(labelled_run.labels, weights)) / sum(weights)
    assert math.isclose(mean, results["dev"]["nll"], rel_tol=1e-9)
    words = labelled_run.sample(60, label="twice", seed=3)
    assert words.labels == ["twice"] * 60
    ranks = labelled_run.classify(list(words))
    assert sum(next(iter(r)) == "twice" for r in ranks) >= 45  # far above the 30 of chance
    for r in ranks:
        assert math.isclose(sum(r.values()), 1.0, rel_tol=1e-9)


def test_several_labels_mix_by_train_frequency_and_unknown_labels_name_the_known(labelled_run):
    words = labelled_run.sample(200, label=["first", "twice"], seed=5)
    share = words.labels.count("twice") / 200
    assert 0.38 < share < 0.62 and set(words.labels) == {"twice", "first"}
    with pytest.raises(DataError, match=r"unknown label 'zz': the run's labels are first, twice"):
        labelled_run.sample(3, label="zz")
    with pytest.raises(ValueError, match="one label"):
        labelled_run.sample(3, most_likely=True)
    top = labelled_run.sample(3, most_likely=True, label="first")
    assert top.labels == ["first"] * 3 and top.probs == sorted(top.probs, reverse=True)


def test_scores_by_label_and_the_mixture_agree_with_bayes(labelled_run):
    words = ["maria", "mmaarriiaa", "mary"]
    per = {label: labelled_run.score(words, label=label) for label in labelled_run.labels}
    mixed = labelled_run.score(words)
    assert [s.logprob for s in labelled_run.score(words, label="all")] == [s.logprob for s in mixed]
    counts = labelled_run.data.train.labels.bincount().double()
    prior = (counts / counts.sum()).tolist()
    ranks = labelled_run.classify(words)
    for i in range(len(words)):
        likelihoods = [math.exp(per[label][i].logprob) for label in labelled_run.labels]
        evidence = sum(p * q for p, q in zip(prior, likelihoods))
        assert math.isclose(math.exp(mixed[i].logprob), evidence, rel_tol=1e-6)
        for label, p, q in zip(labelled_run.labels, prior, likelihoods):
            assert math.isclose(ranks[i][label], p * q / evidence, rel_tol=1e-6)
    assert next(iter(ranks[0])) == "first" and next(iter(ranks[1])) == "twice"


def test_a_labelled_checkpoint_reloads_with_its_labels(labelled_run):
    again = makemore.load(labelled_run.path.parent)
    assert again.labels == labelled_run.labels
    assert again.data.dev.items == labelled_run.data.dev.items
    assert torch.equal(again.data.dev.labels, labelled_run.data.dev.labels)
    assert again.sample(5, label="first", seed=1) == labelled_run.sample(5, label="first", seed=1)


def test_the_cli_samples_scores_and_evaluates_by_label(labelled_run, capsys, tiny_file, tmp_path):
    work = str(labelled_run.path.parent)
    assert main(["sample", "--work-dir", work, "-n", "4", "--label", "twice", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["label"] for s in out["samples"]] == ["twice"] * 4
    assert main(["score", "--work-dir", work, "anna", "--labels", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)["words"][0]["labels"]
    assert list(ranked) == ["first", "twice"]
    assert main(["eval", "--work-dir", work, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["labels"]) == {"twice", "first"}
    assert main(["sample", "--work-dir", work, "--label", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the run's labels are first, twice" in err
    plain = tmp_path / "plain"
    makemore.train(input=str(tiny_file), type="bigram", work_dir=str(plain), progress=False)
    capsys.readouterr()
    assert main(["sample", "--work-dir", str(plain), "--label", "F"]) == 2
    assert "not trained on labelled data" in capsys.readouterr().err


def test_masked_constraints_keep_the_label(labelled_run):
    model, data = labelled_run.model, labelled_run.data
    gen = torch.Generator().manual_seed(0)
    words, _ = generate_ended(model, data.vocab, 5, 12, generator=gen, labels=torch.zeros(5, dtype=torch.long))
    assert len(words) == 5


def test_what_does_not_carry_labels_refuses_a_labelled_run_in_one_line(labelled_run, labelled_file, tmp_path):
    from makemore.export import ExportError, export
    from makemore.mix import MixError, mix
    from makemore.models import ModelConfigError, create_model
    from makemore.runs import build_config

    with pytest.raises(ExportError, match="a labelled run is not exported yet"):
        export(labelled_run, "safetensors", tmp_path / "m.safetensors")
    with pytest.raises(MixError, match="is a labelled run"):
        mix([labelled_run, labelled_run], ["a", "b"], tmp_path / "mix")
    cfg = build_config(overrides={"model.type": "nbigram", "model.engine": "micrograd"})
    with pytest.raises(ModelConfigError, match="micrograd engine does not learn labels"):
        create_model("nbigram", cfg.model, 27, 10, ["F", "M"])


def test_threads_reading_one_labelled_model_do_not_see_each_others_labels(labelled_run):
    """A server answers many requests from one model at once: each thread's labels are its own."""
    import concurrent.futures

    words = ["maria", "mmaarriiaa", "anna"]
    alone = {label: [s.logprob for s in labelled_run.score(words, label=label)] for label in labelled_run.labels}
    samples = {label: list(labelled_run.sample(20, label=label, seed=2)) for label in labelled_run.labels}

    def job(i):
        label = labelled_run.labels[i % 2]
        if i % 3:
            return ("score", label, [s.logprob for s in labelled_run.score(words, label=label)])
        return ("sample", label, list(labelled_run.sample(20, label=label, seed=2)))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for kind, label, got in pool.map(job, range(48)):
            assert got == (alone if kind == "score" else samples)[label]
