"""Constraints kept while generating (the automaton and the masked route) and the exact most likely words."""

import itertools
import json
import math
import re

import pytest
import torch

from makemore.config import ConfigError
from makemore.constrain import ConstraintError, compile_constraints
from makemore.data import Dataset, Vocab
from makemore.likely import SearchError, cat_rows, most_likely, search
from makemore.sample import generate_ended, sample
from makemore.score import score_words
from tests.conftest import chi2_critical, fitted, small_model

ITEMS = ["ab", "abc", "ca", "bca", "cab", "a", "bb", "acca", "bac", "cc", "abca", "ba", "cba", "aab"]


@pytest.fixture(scope="module")
def abc() -> Dataset:
    """Items over a three-letter vocabulary: every word up to a length can be enumerated."""
    return Dataset.from_splits(Vocab.from_items(ITEMS), ITEMS[:10], ITEMS[10:12], ITEMS[12:])


@pytest.fixture(scope="module")
def models(abc):
    """Small untrained models of each family (windows, recurrent, attention, convolution, counts)."""
    out = {}
    for model_type in ("bigram", "mlp", "lstm", "transformer", "wavenet"):
        out[model_type] = fitted(small_model(model_type, abc.vocab.size, abc.max_item_length).eval(), abc)
    return out


def brute_force(model, data, length: int, keep=lambda w: True) -> list[tuple[str, float]]:
    """Every word of 1..length characters, scored by the model's forward pass, most likely first."""
    words = ["".join(p) for n in range(1, length + 1) for p in itertools.product("abc", repeat=n)]
    words = [w for w in words if keep(w)]
    scores = score_words(model, data, words)
    return sorted(((w, s.logprob) for w, s in zip(words, scores)), key=lambda e: -e[1])


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("model_type", ["bigram", "mlp", "lstm", "transformer", "wavenet"])
def test_most_likely_equals_brute_force_enumeration(models, abc, model_type):
    model = models[model_type]
    longest = min(5, model.context_limit - 1) if model.context_limit else 5
    truth = brute_force(model, abc, longest)[:25]
    words, logprobs, stats = most_likely(model, abc, 25, max_length=longest)
    assert words == [w for w, _ in truth] and stats.complete and stats.stopped is None
    assert logprobs == pytest.approx([lp for _, lp in truth], abs=1e-5)


def test_most_likely_with_prefix_novel_and_match_equals_brute_force(models, abc):
    model = models["lstm"]
    seen = set(ITEMS)
    truth = brute_force(model, abc, 6, lambda w: w.startswith("b") and w not in seen and re.fullmatch("[ab]*a", w))
    words, logprobs, stats = most_likely(model, abc, 12, prefix="b", novel=True, match="[ab]*a", max_length=6)
    assert words == [w for w, _ in truth[:12]]
    assert logprobs == pytest.approx([lp for _, lp in truth[:12]], abs=1e-5)
    assert stats.skipped["not novel"] > 0  # "ba" is in the data: passed over, not returned


def test_most_likely_says_when_fewer_words_exist(models, abc):
    words, _, stats = most_likely(models["mlp"], abc, 50, max_length=2)  # 3 + 9 words in all
    assert len(words) == 12 and stats.stopped == "exhausted" and not stats.complete
    assert "no other word" in stats.shortfall()


def test_a_budget_stops_short_with_the_most_likely_words_found_in_order(models, abc):
    model = models["lstm"]
    full = most_likely(model, abc, 20, max_length=5)[0]
    words, _, stats = most_likely(model, abc, 20, max_length=5, budget=12)
    assert stats.stopped == "budget" and stats.expanded == 12 and 0 < len(words) < 20
    assert words == full[: len(words)]
    message = stats.shortfall()
    assert "\n" not in message and "--budget" in message and f"{len(words)} of 20" in message
    with pytest.raises(SearchError, match="found no word within 1 prefixes expanded.*raise --budget"):
        most_likely(model, abc, 5, max_length=5, budget=1)


def test_the_search_batches_and_the_state_joins_keep_it_exact(models, abc):
    model = models["transformer"]  # a key/value cache: state widths grow with the prefix
    automaton = compile_constraints(abc.vocab, min_length=1, max_length=5)
    one = search(model, abc, 25, automaton, batch_size=1)[0]
    many = search(model, abc, 25, automaton, batch_size=64)[0]
    assert one == many
    a, b = torch.randn(2, 3), torch.randn(1, 3)
    shared = torch.randn(4)
    joined = cat_rows([(a, {"s": shared, "q": [a]}, 5), (b, {"s": shared, "q": [b]}, 5)])
    assert torch.equal(joined[0], torch.cat([a, b])) and joined[1]["s"] is shared and joined[2] == 5


def test_masked_draws_all_full_match_and_none_is_wasted(models, abc):
    model = models["bigram"]
    words, _, stats = sample(model, abc, 300, gen(0), match="b[ab]*c?", suffix="a", contains="ab", max_length=7)
    assert len(words) == 300 and stats.drawn == stats.kept == 300 and not stats.rejected
    assert all(re.fullmatch("b[ab]*c?", w) and w.endswith("a") and "ab" in w and len(w) <= 7 for w in words)
    assert stats.constrain == "mask"
    free, _, rejected = sample(model, abc, 300, gen(0), match="b[ab]*c?", suffix="a", contains="ab", max_length=7,
                               constrain="reject", tries=100_000)
    assert rejected.drawn > 3 * rejected.kept and rejected.constrain == "reject"
    assert all(re.fullmatch("b[ab]*a", w) and "ab" in w for w in free)


def test_masked_step_draws_the_model_renormalized_over_allowed_characters(models, abc):
    model = models["lstm"]
    # after "b", the word "b[bc]..." continues with b or c (not a, not the end): the mask leaves those two
    automaton = compile_constraints(abc.vocab, match="b[bc][a-c]*", max_length=4)
    n = 20_000
    words, _ = generate_ended(model, abc.vocab, n, 4, prefix="b", generator=gen(1), automaton=automaton)
    counts = [sum(w[1] == c for w in words) for c in "bc"]
    state = model.init_state(1)
    for token in (0, abc.vocab.encode("b")[0]):
        logits, state = model.step(torch.tensor([token]), state)
    probs = logits.softmax(-1)[0, abc.vocab.encode("bc")]
    expected = (probs / probs.sum()).tolist()
    assert sum(counts) == n and all(re.fullmatch("b[bc][a-c]*", w) for w in words)
    chi2 = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, expected))
    assert chi2 < chi2_critical(1), (counts, expected)


@pytest.mark.parametrize("options, pattern", [
    (dict(match="q{3}", max_length=2), "no word can meet --match 'q{3}'"),
    (dict(match="a{3}", max_length=2), "no word can meet --match 'a{3}' among words of"),
    (dict(contains="z"), "--contains 'z' has characters not in the vocabulary"),
    (dict(match="("), "--match '(' is not a regular expression interegular can compile"),
    (dict(match="a+", suffix="b", max_length=4), "no word meets --match 'a+' and --suffix 'b' together"),
    (dict(prefix="c", match="a.*", max_length=4), "no word meets --match 'a.*' and --prefix 'c' together"),
])
def test_impossible_or_malformed_constraints_are_refused_before_any_model_step(models, abc, options, pattern):
    model = models["lstm"]
    calls = []
    model.step = lambda *a: calls.append(1)  # noqa: ARG005 - a step would be recorded
    try:
        for route in ("mask", "reject"):
            with pytest.raises(ConstraintError, match=re.escape(pattern)) as e:
                sample(model, abc, 5, gen(0), constrain=route, **options)
            assert "\n" not in str(e.value)
        with pytest.raises(ConstraintError, match=re.escape(pattern)):
            most_likely(model, abc, 5, **options)
    finally:
        del model.step
    assert calls == []


def test_the_automaton_accepts_exactly_the_words_meeting_every_constraint(abc):
    automaton = compile_constraints(abc.vocab, match="[ab]+c*", suffix="bc", contains="ab", prefix="a",
                                    min_length=3, max_length=6)
    words = ["".join(p) for n in range(8) for p in itertools.product("abc", repeat=n)]
    for w in words:
        meets = bool(re.fullmatch("[ab]+c*", w)) and w.endswith("bc") and "ab" in w and w.startswith("a")
        assert automaton.accepts(w) == (meets and 3 <= len(w) <= 6), w


@pytest.fixture(scope="module")
def run(tmp_path_factory, abc):
    from makemore.api import load, train

    root = tmp_path_factory.mktemp("search")
    names = root / "abc.txt"
    names.write_text("\n".join(ITEMS * 3) + "\n")
    train(input=str(names), type="bigram", work_dir=str(root / "run"), progress=False)
    return load(root / "run")


def test_api_most_likely_gives_probabilities_and_nlls_as_score_counts_them(run):
    samples = run.sample(6, most_likely=True, max_length=4)
    scores = run.score(list(samples))
    assert samples.probs == pytest.approx([math.exp(s.logprob) for s in scores], rel=1e-5)
    assert samples.nlls == pytest.approx([s.nll for s in scores], rel=1e-5)
    assert samples.probs == sorted(samples.probs, reverse=True) and samples.origins == [s.origin for s in scores]
    json.dumps(samples.stats.to_dict(), allow_nan=False)  # strict JSON


@pytest.mark.parametrize("options, pattern", [
    (dict(most_likely=True, temperature=0.5), "most_likely is an exact search, not a draw: leave out temperature"),
    (dict(most_likely=True, num=0), "sample.num must be at least 1"),
    (dict(most_likely=True, budget=0), "sample.budget must be at least 1"),
    (dict(budget=10), "budget bounds the most-likely search"),
    (dict(match="(a"), "sample.match '\\(a' is not a regular expression"),
    (dict(constrain="filter"), "constrain"),
])
def test_bad_search_options_are_one_line_config_errors(run, options, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        run.sample(**options)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def run_dir(run):
    return run.path.parent


@pytest.mark.parametrize("flags, pattern", [
    (["--match", "c{3}", "--max-length", "2"], "no word can meet --match 'c{3}' among words of at most 2 characters"),
    (["--match", "(["], "sample.match '([' is not a regular expression interegular can compile"),
    (["--contains", "z"], "--contains 'z' has characters not in the vocabulary"),
    (["--most-likely", "-n", "0"], "sample.num must be at least 1, got 0"),
    (["--most-likely", "--budget", "1"], "found no word within 1 prefixes expanded"),
    (["--most-likely", "--top-k", "2"], "leave out top_k"),
])
def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(run_dir, capsys, tmp_path, flags, pattern):
    from makemore.cli import main

    target = tmp_path / "words.txt"
    assert main(["sample", "-o", str(run_dir), *flags, "--output", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and pattern in err and not target.exists()


def test_cli_most_likely_prints_probabilities_in_order_and_json(run_dir, capsys, run):
    from makemore.cli import main

    assert main(["sample", "-o", str(run_dir), "-n", "4", "--most-likely", "--max-length", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = run.sample(4, most_likely=True, max_length=3)
    assert [s["word"] for s in out["samples"]] == list(expected)
    assert [s["prob"] for s in out["samples"]] == pytest.approx(expected.probs)
    assert out["stats"]["complete"] and out["stats"]["expanded"] > 0
    budget = str(run.sample(3, most_likely=True, max_length=4).stats.expanded)
    flags = ["-n", "60", "--most-likely", "--max-length", "4", "--budget", budget]
    assert main(["sample", "-o", str(run_dir), *flags]) == 2
    captured = capsys.readouterr()
    assert 3 <= len(captured.out.splitlines()) < 60 and "raise --budget" in captured.err.splitlines()[-1]
