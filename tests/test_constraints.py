"""Sampling with constraints: nucleus (top-p), lengths, patterns, novelty, uniqueness, the tries budget; the CLI."""

import json
import math
import warnings

import pytest
import torch

from makemore.api import load
from makemore.cli import main
from makemore.sample import draw, generate, generate_ended, sample
from tests.conftest import chi2_critical, fitted, small_model

QUICK = ["--max-steps", "40", "--eval-interval", "20", "--batch-size", "32", "--no-progress", "--n-embd2", "32",
         "--threads", "1", "--lr", "0.01"]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def expected(logits: list[float], temperature=1.0, top_k=None, top_p=None) -> list[float]:
    """The distribution draw() should sample, computed independently, in plain Python."""
    probs = [math.exp(v / temperature) for v in logits]
    order = sorted(range(len(logits)), key=lambda i: -probs[i])
    allowed = set(order[:top_k] if top_k else order)
    total = sum(probs[i] for i in allowed)
    probs = [p / total if i in allowed else 0.0 for i, p in enumerate(probs)]
    if top_p is not None:
        kept, mass = set(), 0.0
        for i in order:
            if i in allowed and mass < top_p:
                kept.add(i)
                mass += probs[i]
        probs = [p / mass if i in kept else 0.0 for i, p in enumerate(probs)]
    return probs


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, 0.7), (1.0, None, 0.95), (0.6, 8, 0.8),
                                                        (1.7, None, 0.5)])
def test_top_p_draws_only_from_the_nucleus_in_the_renormalized_proportions(temperature, top_k, top_p):
    logits = torch.linspace(-3, 2, 12)[torch.randperm(12, generator=gen(0))]
    n = 60_000
    drawn = draw(logits.expand(n, -1), temperature, top_k, gen(1), top_p)
    counts = torch.bincount(drawn, minlength=12).tolist()
    probs = expected(logits.tolist(), temperature, top_k, top_p)
    outside = [i for i, p in enumerate(probs) if p == 0]
    assert outside and sum(counts[i] for i in outside) == 0  # never outside the nucleus
    inside = [i for i, p in enumerate(probs) if p > 0]
    chi2 = sum((counts[i] - n * probs[i]) ** 2 / (n * probs[i]) for i in inside)
    assert chi2 < chi2_critical(len(inside) - 1), (chi2, counts, probs)


def test_top_p_keeps_the_most_likely_token_even_when_it_alone_exceeds_p():
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])
    assert draw(logits.repeat(50, 1), top_p=0.01, generator=gen(0)).tolist() == [1, 0] * 50


@pytest.fixture
def bigram(tiny_data):
    return fitted(small_model("bigram", tiny_data.vocab.size, tiny_data.max_item_length), tiny_data).eval()


def test_min_length_masks_the_end_so_no_word_is_shorter(bigram, tiny_data):
    free = generate(bigram, tiny_data.vocab, 400, 30, generator=gen(0))
    assert min(len(w) for w in free) < 4
    words = generate(bigram, tiny_data.vocab, 400, 30, generator=gen(0), min_length=6)
    assert min(len(w) for w in words) == 6  # none shorter, and the shortest allowed is common


def test_words_not_ended_within_max_length_are_marked_and_rejected_by_the_reject_route(bigram, tiny_data):
    words, ended = generate_ended(bigram, tiny_data.vocab, 400, 4, generator=gen(0))
    assert all(e for w, e in zip(words, ended) if len(w) < 4)  # shorter words ended, or they would be longer
    assert any(e for w, e in zip(words, ended) if len(w) == 4) and any(not e for e in ended)
    kept, _, stats = sample(bigram, tiny_data, 400, gen(0), max_length=4, constrain="reject")
    first_round = [w for w, e in zip(words, ended) if e]  # the same seed draws the same first round
    assert kept[: len(first_round)] == first_round and len(kept) == 400 and all(len(w) <= 4 for w in kept)
    assert stats.rejected["too long"] >= ended.count(False) and stats.drawn == 400 + stats.rejected["too long"]


def test_every_constraint_holds_and_the_counts_add_up(bigram, tiny_data):
    words, origins, stats = sample(bigram, tiny_data, 40, gen(3), prefix="a", suffix="a", contains="n",
                                   regex="^a[^e]*$", min_length=4, max_length=9, novel=True, unique=True)
    train, heldout = tiny_data.item_sets
    assert len(words) == 40 == len(set(words)) and origins == ["new"] * 40
    for w in words:
        assert w.startswith("a") and w.endswith("a") and "n" in w and "e" not in w and 4 <= len(w) <= 9
        assert w not in train and w not in heldout
    assert stats.complete and stats.kept == 40
    assert stats.drawn == stats.kept + sum(stats.rejected.values())
    assert sum(stats.origins.values()) == stats.drawn and stats.rejected["no match"] > 0
    again = sample(bigram, tiny_data, 40, gen(3), prefix="a", suffix="a", contains="n", regex="^a[^e]*$",
                   min_length=4, max_length=9, novel=True, unique=True)[0]
    assert again == words  # same seed, same words


def test_an_impossible_constraint_stops_at_the_tries_budget(bigram, tiny_data):
    words, _, stats = sample(bigram, tiny_data, 5, gen(0), regex="q{9}", tries=3000)
    assert words == [] and stats.drawn == 3000 and not stats.complete
    message = stats.shortfall()
    assert "3000 tries" in message and "0 of 5" in message and "\n" not in message


def test_without_constraints_sample_gives_generates_words(bigram, tiny_data):
    words, _, stats = sample(bigram, tiny_data, 50, gen(7))
    assert words == generate(bigram, tiny_data.vocab, 50, 2 * tiny_data.max_item_length, generator=gen(7))
    assert stats.drawn == 50 and not stats.rejected


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from makemore.data import bundled_path

    root = tmp_path_factory.mktemp("constraints")
    names = root / "names.txt"
    names.write_text("\n".join(bundled_path().read_text().split()[:300]) + "\n")
    work = root / "run"
    assert main(["-i", str(names), "-o", str(work), *QUICK]) == 0
    return work


def test_cli_novel_unique_length_range(run_dir, capsys):
    args = ["sample", "-o", str(run_dir), "-n", "1000", "--novel", "--unique", "--min-length", "4",
            "--max-length", "8", "--plain"]
    assert main(args) == 0
    captured = capsys.readouterr()
    words = captured.out.split()
    items = set(load(run_dir).data.item_sets[0]) | load(run_dir).data.item_sets[1]
    assert len(words) == 1000 == len(set(words))
    assert all(4 <= len(w) <= 8 and w not in items for w in words)
    assert "drew" in captured.err and "new (" in captured.err and "kept 1000" in captured.err


def test_cli_impossible_regex_stops_with_one_line_and_exit_2(run_dir, capsys):
    assert main(["sample", "-o", str(run_dir), "-n", "5", "--regex", "^zzzzzzzzz$", "--tries", "2000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("makemore: the budget of 2000 tries ran out with 0 of 5 words")


def test_cli_json_and_output_file(run_dir, capsys, tmp_path):
    assert main(["sample", "-o", str(run_dir), "-n", "6", "--top-p", "0.9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    words = [s["word"] for s in out["samples"]]
    scores = load(run_dir).score(words)
    assert [s["nll"] for s in out["samples"]] == pytest.approx([s.nll for s in scores])
    assert [s["origin"] for s in out["samples"]] == [s.origin for s in scores]
    assert out["stats"]["drawn"] == 6 and out["stats"]["complete"]
    target = tmp_path / "words.txt"
    assert main(["sample", "-o", str(run_dir), "-n", "6", "--top-p", "0.9", "--output", str(target)]) == 0
    assert target.read_text().split() == words and capsys.readouterr().out == ""


def test_bad_sampling_options_are_one_line_errors(run_dir, capsys):
    for flags, pattern in ((["--top-p", "1.5"], "sample.top_p must be in (0, 1]"),
                           (["--regex", "(["], "not a valid regular expression"),
                           (["--min-length", "9", "--max-length", "4"], "above sample.max_length")):
        assert main(["sample", "-o", str(run_dir), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and pattern in err


def test_sample_only_on_a_terminal_samples_until_the_user_quits(run_dir, capsys, monkeypatch):
    answers = iter(["", "", "q"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["-o", str(run_dir), "--sample-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 60  # three rounds of 20, then q
    assert lines[:20] != lines[20:40]  # each round new words


def test_the_api_warns_when_the_budget_runs_out(run_dir):
    run = load(run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        words = run.sample(3, regex="^q{9}$", tries=500)
    assert words == [] and words.stats.drawn == 500 and "tries ran out" in str(caught[0].message)
