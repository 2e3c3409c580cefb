"""The Python API: the README's snippet as written, keyword options, load, and the CLI on top of it."""

import re
from pathlib import Path

import pytest

import makemore
from makemore.api import config_keys
from makemore.cli import main
from makemore.config import ConfigError
from makemore.data import bundled_path

README = Path(__file__).parent.parent / "README.md"
QUICK = {"max_steps": 20, "eval_interval": 10, "batch_size": 16, "n_embd2": 16, "threads": 1, "progress": False}


def readme_snippet() -> str:
    """The first Python block of the README's Python API section."""
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the snippet reads names.txt and writes out/ where it runs
    (tmp_path / "names.txt").write_text(bundled_path().read_text())
    namespace = {}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    run, words, scores, losses = (namespace[k] for k in ("run", "words", "scores", "losses"))
    assert isinstance(run, makemore.Run) and run.cfg.model_type == "mlp"
    assert len(words) == 10 and words.origins == ["new"] * 10 and words.stats.complete
    assert [s.word for s in scores] == ["emma", "zzxq"] and scores[0].nll < scores[1].nll  # a real name is likelier
    assert len(namespace["surprise"]) == 5 and all(0 < p < 1 for p in namespace["surprise"])
    assert set(losses) == {"train", "dev", "test"} and losses["dev"]["nll"] < 3.0  # it learned: ln 27 = 3.3
    assert (tmp_path / "out" / "mlp" / "model.pt").exists()


def test_keyword_options_become_config_keys():
    keys = config_keys({"input": "a.txt", "type": "transformer", "max_steps": 5, "lr": 0.1, "n_head": 2,
                        "seed": 3, "temperature": 0.5, "max_length": 12, "train.betas": [0.9, 0.95]})
    assert keys == {"data.input": "a.txt", "model.type": "transformer", "train.max_steps": 5, "train.lr": 0.1,
                    "model.n_head": 2, "seed": 3, "data.seed": 3, "sample.temperature": 0.5,
                    "data.max_length": 12, "train.betas": [0.9, 0.95]}


@pytest.mark.parametrize("options, pattern", [
    ({"max_step": 5}, "did you mean max_steps"),
    ({"type": "bigram", "n_embd": 8}, "unknown option 'n_embd' for a bigram")])
def test_an_unknown_option_is_a_one_line_error(options, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern) as e:
        makemore.train(work_dir=str(tmp_path / "run"), **options)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    names = root / "names.txt"
    names.write_text("\n".join(bundled_path().read_text().split()[:300]) + "\n")
    return makemore.train(input=str(names), work_dir=str(root / "run"), prefix="b", **QUICK)


def test_train_returns_the_best_checkpoint_with_its_report(trained):
    assert trained.results["dev"]["nll"] == pytest.approx(trained.evaluate()["dev"]["nll"], abs=1e-12)
    again = makemore.load(trained.path)
    assert again.evaluate() == trained.evaluate()
    folder = makemore.load(trained.path.parent)  # a folder means its best checkpoint
    assert folder.path == trained.path and folder.path.name == "model.pt" and folder.sample(5) == again.sample(5)
    assert makemore.load(trained.path.parent, "last.pt").path.name == "last.pt"


def test_sample_takes_the_runs_sample_section_and_options_override_it(trained):
    assert all(w.startswith("b") for w in trained.sample(10))  # the run was trained with prefix b
    assert all(w.startswith("ma") for w in trained.sample(10, prefix="ma"))
    with pytest.raises(ConfigError, match="unknown key sample.colour"):
        trained.sample(3, colour="red")


def test_the_cli_prints_what_the_api_returns(trained, capsys):
    work = str(trained.path.parent)
    assert main(["sample", "-o", work, "-n", "12", "--seed", "5", "--top-p", "0.9", "--plain"]) == 0
    assert capsys.readouterr().out.split() == trained.sample(12, seed=5, top_p=0.9)
    assert main(["eval", "-o", work, "--json"]) == 0
    assert '"dev": {"nll": ' + repr(trained.evaluate()["dev"]["nll"]) in capsys.readouterr().out
