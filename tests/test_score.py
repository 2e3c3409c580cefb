"""Scoring words: the same figures as eval, per word and per character; the `makemore score` command."""

import io
import json
import math

import pytest

from makemore import score as S
from makemore.cli import main
from makemore.evaluate import split_nll
from makemore.models import MODELS
from tests.conftest import fitted, small_model

QUICK = ["--max-steps", "20", "--eval-interval", "10", "--batch-size", "16", "--no-progress", "--n-embd2", "16",
         "--threads", "1"]


def ready(model_type, data):
    """A small model of the type; count models fitted, the others at their (seeded) initialization."""
    return fitted(small_model(model_type, data.vocab.size, data.max_item_length), data).eval()


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_scoring_a_split_reproduces_its_eval_nll(model_type, tiny_data):
    model = ready(model_type, tiny_data)
    for split in (tiny_data.dev, tiny_data.test):
        scores = S.score_words(model, tiny_data, split.items)
        assert [s.word for s in scores] == split.items
        assert abs(S.total(scores)["nll"] - split_nll(model, split)) < 1e-9


def test_a_bigram_word_score_is_the_product_of_its_pair_probabilities(tiny_data):
    model = ready("bigram", tiny_data)
    probs = model.logprobs.detach().double().exp()
    ids = [0, *tiny_data.vocab.encode("emma"), 0]
    expected = [probs[a, b].item() for a, b in zip(ids, ids[1:])]
    (s,) = S.score_words(model, tiny_data, ["emma"])
    assert s.probs == pytest.approx(expected, rel=1e-6)
    assert s.logprob == pytest.approx(sum(math.log(p) for p in expected), rel=1e-6)
    assert s.nll == pytest.approx(-s.logprob / 5) and s.bpc == pytest.approx(s.nll / math.log(2))
    assert s.perplexity == pytest.approx(math.exp(s.nll))


def test_a_word_scores_the_same_alone_or_among_others(tiny_data):
    model = ready("mlp", tiny_data)
    alone = S.score_words(model, tiny_data, ["anna"])[0]
    among = S.score_words(model, tiny_data, ["christopher", "anna", "bo"])[1]
    assert alone.surprisal == pytest.approx(among.surprisal, abs=1e-5)


def test_unscorable_words_are_named_in_one_message(tiny_data):
    model = ready("transformer", tiny_data)  # reads at most the longest item
    too_long = "a" * (tiny_data.max_item_length + 1)
    with pytest.raises(S.ScoreError) as e:
        S.score_words(model, tiny_data, ["emma", "zoë", too_long])
    message = str(e.value)
    assert "'zoë'" in message and "'ë' not in the vocabulary" in message and "longer than" in message
    assert "emma" not in message and "\n" not in message


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from makemore.data import bundled_path

    root = tmp_path_factory.mktemp("score")
    names = root / "names.txt"
    names.write_text("\n".join(bundled_path().read_text().split()[:300]) + "\n")
    work = root / "run"
    assert main(["-i", str(names), "-o", str(work), *QUICK]) == 0
    return work


def test_score_json_prints_every_word(run_dir, capsys):
    assert main(["score", "-o", str(run_dir), "emma", "zzxq", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [w["word"] for w in out["words"]] == ["emma", "zzxq"]
    for w in out["words"]:
        assert w["logprob"] < 0 and w["nll"] == pytest.approx(-w["logprob"] / 5)
        assert w["perplexity"] == pytest.approx(math.exp(w["nll"]))
    assert out["total"]["targets"] == 10


def test_scoring_every_dev_item_equals_eval(run_dir, capsys, tmp_path):
    from makemore import checkpoint

    dev = checkpoint.load(run_dir / "model.pt")["items"]["dev"]
    (tmp_path / "dev.txt").write_text(dev + "\n")
    assert main(["score", "-o", str(run_dir), "--file", str(tmp_path / "dev.txt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["total"]
    assert main(["eval", "-o", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["dev"]
    assert scored["words"] == len(dev.split("\n"))
    assert abs(scored["nll"] - evaluated["nll"]) < 1e-9


def test_words_from_standard_input_and_per_character_view(run_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("emma\n\nzzxq\n"))
    assert main(["score", "-o", str(run_dir), "-", "--chars"]) == 0
    out = capsys.readouterr().out
    assert "emma" in out and "zzxq" in out and out.count("  char ") == 2 and S.END in out
    bars = [line for line in out.splitlines() if set(line.strip()) <= set(S.BARS) and line.strip()]
    assert len(bars) == 2


def test_unknown_characters_are_one_line_or_skipped(run_dir, capsys):
    assert main(["score", "-o", str(run_dir), "emma", "zoë"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'zoë'" in err and "--skip-unknown" in err
    assert main(["score", "-o", str(run_dir), "emma", "zoë", "--skip-unknown", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [w["word"] for w in out["words"]] == ["emma"] and out["skipped"] == ["zoë"]
    assert "skipped 1" in captured.err


def test_the_surprising_letter_gets_the_tallest_bar():
    s = S.Score("abc", [0.1, 5.0, 0.2, 0.3])
    bars = S.char_lines(s, 27)[-1].split()
    assert bars[1] == max(bars, key=S.BARS.index) and bars[0] != bars[1]
