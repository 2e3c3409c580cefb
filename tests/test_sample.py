"""The one sampler: determinism, vocabulary, boundaries, prefixes, eval mode, tags."""

import pytest
import torch

from makemore.sample import SampleError, generate, tag
from tests.test_models import SequenceBigram, small_model


@pytest.fixture
def trained(tiny_data):
    model = small_model("bigram", tiny_data.vocab.size, tiny_data.max_item_length)
    w = tiny_data.train.windows(1)
    model.fit(*w.get(torch.arange(len(w))))
    return model


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_top_k_1_is_deterministic(trained, tiny_data):
    a = generate(trained, tiny_data.vocab, 5, 20, top_k=1, generator=gen(1))
    b = generate(trained, tiny_data.vocab, 5, 20, top_k=1, generator=gen(2))
    assert a == b and len(set(a)) == 1


def test_same_seed_same_samples(trained, tiny_data):
    a = generate(trained, tiny_data.vocab, 50, 20, generator=gen(3))
    assert a == generate(trained, tiny_data.vocab, 50, 20, generator=gen(3))
    assert a != generate(trained, tiny_data.vocab, 50, 20, generator=gen(4))


def test_output_stays_in_vocabulary_and_stops_at_the_boundary(tiny_data):
    model = small_model("mlp", tiny_data.vocab.size, tiny_data.max_item_length)
    words = generate(model, tiny_data.vocab, 200, 12, generator=gen(0))
    assert len(words) == 200
    assert all(set(w) <= set(tiny_data.vocab.chars) and len(w) <= 12 for w in words)
    # an untrained model ends a word with probability ~1/V each step, so most words hit the cap...
    assert any(len(w) == 12 for w in words)
    # ...while a trained bigram ends them: lengths spread out below the cap


def test_words_end_at_the_boundary(trained, tiny_data):
    words = generate(trained, tiny_data.vocab, 300, 50, generator=gen(0))
    assert max(len(w) for w in words) < 50 and min(len(w) for w in words) < 4


def test_prefix_is_respected(trained, tiny_data):
    words = generate(trained, tiny_data.vocab, 30, 20, prefix="ma", generator=gen(0))
    assert all(w.startswith("ma") for w in words)


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
    model = small_model("mlp", tiny_data.vocab.size)
    calls = []

    def failing_step(tokens, state):
        calls.append(model.training)
        raise RuntimeError("out of memory")

    model.step = failing_step
    model.train()
    with pytest.raises(RuntimeError, match="out of memory"):
        generate(model, tiny_data.vocab, 4, 10, generator=gen(0))
    assert calls == [False] and model.training  # sampled in eval mode, and the caller's mode is back
