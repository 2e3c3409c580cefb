"""Mixtures: optimal weights on dev, exact evaluation, generation through step(), and the `makemore mix` command."""

import json

import pytest
import torch

import makemore
from makemore.api import Run
from makemore.cli import main
from makemore.evaluate import split_nll
from makemore.mix import Mixture, fit_weights, mix, mixture_nll, part_nlls
from makemore.models import MODELS, SequenceModel
from makemore.runs import build_config
from tests.conftest import SMALL, fitted

QUICK = ["--max-steps", "20", "--eval-interval", "10", "--batch-size", "16", "--no-progress", "--threads", "1"]


def small_run(model_type, data, tmp_path, **options):
    sizes = {k: v for k, v in SMALL.items() if k in MODELS[model_type].Config.__dataclass_fields__}
    if issubclass(MODELS[model_type], SequenceModel):
        sizes.pop("block_size", None)
    cfg = build_config(overrides={"model.type": model_type, "work_dir": str(tmp_path),
                                  **{f"model.{k}": v for k, v in {**sizes, **options}.items()}})
    torch.manual_seed(0)
    model = MODELS[model_type](cfg.model, data.vocab.size, data.max_item_length)
    return Run(cfg, data, fitted(model, data))


@pytest.fixture
def runs(tiny_data, tmp_path):
    return [small_run("bigram", tiny_data, tmp_path), small_run("ngram", tiny_data, tmp_path, n=3),
            small_run("transformer", tiny_data, tmp_path)]


def test_the_mixture_is_no_worse_on_dev_than_any_part_and_evaluates_exactly(runs, tiny_data, tmp_path):
    results = mix(runs, ["a", "b", "c"], tmp_path / "mix")
    parts = [split_nll(run.model, tiny_data.dev) for run in runs]
    assert results["parts_dev_nll"] == pytest.approx(parts, abs=1e-12)
    assert results["dev"]["nll"] <= min(parts) + 1e-6  # each part alone is a feasible weighting (float32 sums)
    w = results["weights"]
    assert sum(w) == pytest.approx(1.0) and all(x >= 0 for x in w)
    # eval of the mixture (windows cut from whole items) equals the mix of each part's own eval path
    for name in ("train", "dev", "test"):
        nll = part_nlls([run.model for run in runs], tiny_data.splits[name])
        assert results[name]["nll"] == pytest.approx(mixture_nll(nll, w), abs=1e-6)


def test_em_finds_the_best_weights(runs, tiny_data):
    nll = part_nlls([run.model for run in runs[:2]], tiny_data.dev)
    best = mixture_nll(nll, fit_weights(nll))
    assert best <= min(mixture_nll(nll, [a / 200, 1 - a / 200]) for a in range(201)) + 1e-7
    # the optimum's (KKT) condition: each part's probability relative to the mixture's averages 1 where the
    # part is used, and at most 1 where it is not (more of it would only raise the NLL)
    nll = part_nlls([run.model for run in runs], tiny_data.dev)
    w = torch.tensor(fit_weights(nll), dtype=torch.float64)
    p = (-nll).exp()
    ratio = (p / (p @ w)[:, None]).mean(0)
    used = w > 1e-3
    assert used.any() and torch.allclose(ratio[used], torch.ones((), dtype=torch.float64), atol=1e-5)
    assert (ratio[~used] <= 1 + 1e-5).all()


def test_step_by_step_logits_equal_the_full_forward(runs, tiny_data):
    model = Mixture([run.model for run in runs], [0.2, 0.5, 0.3]).eval()
    x, _ = model.examples(tiny_data.dev).get(torch.arange(6))
    full = model(x)[0]
    state = model.init_state(len(x))
    for t in range(x.size(1)):
        logits, state = model.step(x[:, t], state)
        assert torch.allclose(logits, full[:, t], atol=1e-5)
    assert torch.allclose(full.exp().sum(-1), torch.ones(()), atol=1e-5)  # a distribution at every position


def test_runs_of_another_split_or_a_mixture_are_refused(runs, tiny_file, tmp_path, capsys):
    for seed in ("1", "2"):
        assert main(["-i", str(tiny_file), "-o", str(tmp_path / seed), "--split-seed", seed, *QUICK]) == 0
    assert main(["mix", str(tmp_path / "1"), str(tmp_path / "2"), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another train/dev/test split" in err
    assert not (tmp_path / "m").exists()
    assert main(["mix", str(tmp_path / "1"), str(tmp_path / "1"), "-o", str(tmp_path / "m")]) == 0
    assert main(["mix", str(tmp_path / "m"), str(tmp_path / "1"), "-o", str(tmp_path / "m2")]) == 2
    assert "a mixture already" in capsys.readouterr().err


def test_cli_mix_then_sample_score_and_eval_it_like_any_run(tiny_file, tmp_path, capsys):
    for model_type in ("bigram", "mlp"):
        assert main(["-i", str(tiny_file), "-o", str(tmp_path / model_type), "--type", model_type, *QUICK]) == 0
    out = str(tmp_path / "mix")
    assert main(["mix", str(tmp_path / "bigram"), str(tmp_path / "mlp"), "-o", out]) == 0
    assert "weights fitted on dev" in capsys.readouterr().out
    results = json.loads((tmp_path / "mix" / "results.json").read_text())
    assert main(["eval", "-o", out, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["dev"]["nll"] == pytest.approx(results["dev"]["nll"], abs=1e-12)
    run = makemore.load(out)
    scores = run.score(run.data.dev.items)
    assert abs(sum(-s.logprob for s in scores) / sum(s.targets for s in scores) - evaluated["dev"]["nll"]) < 1e-9
    assert main(["sample", "-o", out, "-n", "20", "--novel", "--unique", "--plain"]) == 0
    words = capsys.readouterr().out.split()
    assert len(set(words)) == 20 and not set(words) & (run.data.item_sets[0] | run.data.item_sets[1])
    assert "mixture of bigram" in repr(run)
    assert main(["mix", str(tmp_path / "bigram"), str(tmp_path / "mlp"), "-o", out]) == 2  # never silently replaced
