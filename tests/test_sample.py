"""The one sampler: its distribution, determinism, vocabulary, boundaries, prefixes, eval mode, tags."""

import pytest
import torch

from makemore.data import BOUNDARY
from makemore.sample import SampleError, draw, generate, tag
from tests.conftest import SequenceBigram, fitted, small_model


@pytest.fixture
def trained(tiny_data):
    return fitted(small_model("bigram", tiny_data.vocab.size, tiny_data.max_item_length), tiny_data)


def gen(seed):
    return torch.Generator().manual_seed(seed)


LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])  # one row of logits, every probability distinct
DRAWS = 100_000
CHI2_999 = {2: 13.816, 5: 20.515}  # 0.999 quantiles of the chi-square distribution, by degrees of freedom


def frequencies(temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> torch.Tensor:
    """How often draw() picks each token in DRAWS rows of LOGITS."""
    tokens = draw(LOGITS.expand(DRAWS, -1), temperature, top_k, torch.Generator().manual_seed(seed))
    return torch.bincount(tokens, minlength=len(LOGITS)).double()


def chi_square(observed: torch.Tensor, probs: torch.Tensor) -> float:
    expected = observed.sum() * probs.double()
    return float(((observed - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_draws_follow_softmax_of_logits_over_temperature(temperature):
    """Gumbel-max must draw from softmax(logits / T); a sign error or a misplaced T fails this by a mile."""
    observed = frequencies(temperature)
    statistic = chi_square(observed, torch.softmax(LOGITS / temperature, 0))
    assert statistic < CHI2_999[5], (temperature, statistic, observed.tolist())


def test_temperature_sharpens_below_one_and_flattens_above():
    top = [frequencies(t)[0].item() / DRAWS for t in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert top == sorted(top, reverse=True) and top[0] > 0.95 and top[-1] < 0.4  # toward greedy, toward uniform
    assert frequencies(1e-4)[1:].sum() == 0  # near zero it is argmax


def test_top_k_draws_only_the_k_most_likely_in_their_renormalized_proportions():
    observed = frequencies(top_k=3)
    assert observed[3:].sum() == 0  # never outside the top 3
    statistic = chi_square(observed[:3], torch.softmax(LOGITS[:3], 0))
    assert statistic < CHI2_999[2], (statistic, observed.tolist())
    shuffled = LOGITS[torch.tensor([4, 0, 5, 2, 1, 3])]  # the top k wherever they sit in the row
    tokens = draw(shuffled.expand(10_000, -1), top_k=2, generator=torch.Generator().manual_seed(1))
    assert set(tokens.tolist()) == {1, 4}


def test_top_k_1_is_deterministic(trained, tiny_data):
    a = generate(trained, tiny_data.vocab, 5, 20, top_k=1, generator=gen(1))
    b = generate(trained, tiny_data.vocab, 5, 20, top_k=1, generator=gen(2))
    assert a == b and len(set(a)) == 1


def test_same_seed_same_samples(trained, tiny_data):
    a = generate(trained, tiny_data.vocab, 50, 20, generator=gen(3))
    assert a == generate(trained, tiny_data.vocab, 50, 20, generator=gen(3))
    assert a != generate(trained, tiny_data.vocab, 50, 20, generator=gen(4))


def test_output_stays_in_vocabulary_and_stops_at_the_boundary(trained, tiny_data):
    model = small_model("mlp", tiny_data.vocab.size, tiny_data.max_item_length)
    words = generate(model, tiny_data.vocab, 200, 12, generator=gen(0))
    assert len(words) == 200
    assert all(set(w) <= set(tiny_data.vocab.chars) and len(w) <= 12 for w in words)
    # an untrained model ends a word with probability ~1/V each step, so most words hit the cap...
    capped = sum(len(w) == 12 for w in words)
    assert capped > 100
    # ...while a trained bigram ends them: lengths spread out below the cap
    ended = generate(trained, tiny_data.vocab, 200, 12, generator=gen(0))
    assert sum(len(w) == 12 for w in ended) < capped / 2 and len({len(w) for w in ended}) >= 8


def test_words_end_at_the_boundary(trained, tiny_data):
    words = generate(trained, tiny_data.vocab, 300, 50, generator=gen(0))
    assert max(len(w) for w in words) < 50 and min(len(w) for w in words) < 4


def next_probs(model, vocab, prefix: str) -> torch.Tensor:
    """The model's distribution of the character after prefix (at the start of a word), by its own steps."""
    state = model.init_state(1)
    for token in [BOUNDARY] + vocab.encode(prefix):
        logits, state = model.step(torch.tensor([token]), state)
    return logits[0].softmax(-1).double()


def drawn_after(words: list[str], vocab, prefix: str) -> torch.Tensor:
    """How often each token (the boundary: the word ended) follows prefix in words, as frequencies."""
    tokens = [vocab.encode(w[len(prefix)])[0] if len(w) > len(prefix) else BOUNDARY for w in words]
    return torch.bincount(torch.tensor(tokens), minlength=vocab.size).double() / len(words)


def test_the_letter_after_a_prefix_follows_the_model_given_that_prefix(trained, tiny_data):
    """Every word starts with the prefix by construction; what can fail is what comes next: the model's
    distribution after the prefix, not after the start of a word (a sampler that ignores the prefix)."""
    vocab = tiny_data.vocab
    unconditioned = next_probs(trained, vocab, "")
    tv = {c: 0.5 * (next_probs(trained, vocab, c) - unconditioned).abs().sum().item() for c in vocab.chars}
    prefix = "q" if "q" in vocab.chars else max(tv, key=tv.get)
    assert tv[prefix] > 0.3, tv  # a prefix after which the model says something else than at a word's start
    words = generate(trained, vocab, 20_000, len(prefix) + 1, prefix=prefix, generator=gen(0))
    assert all(w.startswith(prefix) for w in words)
    observed, expected = drawn_after(words, vocab, prefix), next_probs(trained, vocab, prefix)
    assert 0.5 * (observed - expected).abs().sum() < 0.03  # sampling noise of 20,000 draws is well below
    assert 0.5 * (observed - unconditioned).abs().sum() > tv[prefix] - 0.03


def test_prefix_outside_vocabulary_is_an_error(trained, tiny_data):
    with pytest.raises(SampleError, match="not in the vocabulary: 'Z'"):
        generate(trained, tiny_data.vocab, 3, 20, prefix="Za")


def test_temperature_near_zero_is_greedy(trained, tiny_data):
    cold = generate(trained, tiny_data.vocab, 20, 20, temperature=1e-4, generator=gen(5))
    greedy = generate(trained, tiny_data.vocab, 1, 20, top_k=1, generator=gen(0))
    assert set(cold) == set(greedy)


def test_sequence_models_sample_through_the_same_sampler(trained, tiny_data):
    sequence = SequenceBigram(trained.logprobs.data)
    a = generate(sequence, tiny_data.vocab, 40, 20, generator=gen(9))
    b = generate(trained, tiny_data.vocab, 40, 20, generator=gen(9))
    assert a == b


def test_sampling_runs_in_eval_mode_and_restores_the_mode(tiny_data):
    model = small_model("mlp", tiny_data.vocab.size, tiny_data.max_item_length)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(module.training))
    model.train()
    generate(model, tiny_data.vocab, 2, 5, generator=gen(0))
    assert seen and not any(seen) and model.training


def test_tags_use_the_splits():
    assert tag(["ann", "bob", "cyd"], {"ann"}, {"bob"}) == ["train", "dev/test", "new"]


def test_an_error_inside_generation_gives_the_training_mode_back(tiny_data):
    model = small_model("mlp", tiny_data.vocab.size, tiny_data.max_item_length)
    calls = []

    def failing_step(tokens, state):
        calls.append(model.training)
        raise RuntimeError("out of memory")

    model.step = failing_step
    model.train()
    with pytest.raises(RuntimeError, match="out of memory"):
        generate(model, tiny_data.vocab, 4, 10, generator=gen(0))
    assert calls == [False] and model.training  # sampled in eval mode, and the caller's mode is back


def test_a_model_with_a_context_limit_refuses_a_longer_prefix_and_stops_words_there(trained, tiny_data):
    class Short(type(trained)):
        context_limit = 4  # reads at most 4 positions: the start token and 3 characters

    model = Short(trained.config, tiny_data.vocab.size)
    model.load_state_dict(trained.state_dict())
    words = generate(model, tiny_data.vocab, 200, 20, generator=gen(0))
    assert max(len(w) for w in words) == 3
    with pytest.raises(SampleError, match="prefix 'abcd' has 4 characters, but this model reads at most 3"):
        generate(model, tiny_data.vocab, 1, 20, prefix="abcd")
