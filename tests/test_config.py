"""Typed configs: defaults, YAML, overrides and validation that reports every problem."""

from pathlib import Path

import pytest

from makemore import config as C
from makemore import configfile
from makemore.models import MODELS
from makemore.runs import build_config

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = build_config(str(path))
    assert cfg.model_type in MODELS
    assert isinstance(cfg.model, MODELS[cfg.model_type].Config)


def test_model_train_defaults_sit_under_yaml_and_flags(tmp_path):
    cfg = build_config(overrides={"model.type": "nbigram"})
    assert cfg.train.lr == MODELS["nbigram"].train_defaults["lr"]
    path = tmp_path / "c.yaml"
    path.write_text("model: {type: nbigram}\ntrain: {lr: 0.05, max_steps: 7}\n")
    cfg = build_config(str(path), {"train.max_steps": 9})
    assert (cfg.train.lr, cfg.train.max_steps) == (0.05, 9)


def test_unknown_key_names_it_and_the_valid_ones():
    with pytest.raises(C.ConfigError, match=r"unknown key train\.learning_rat .*valid keys: .*\blr\b"):
        build_config(overrides={"train.learning_rat": 0.1})


def test_every_problem_is_reported_at_once():
    with pytest.raises(C.ConfigError) as e:
        build_config(overrides={"train.lr": "fast", "train.batch_size": 0, "model.n_embd": -1, "sample.top_k": 0})
    message = str(e.value)
    for fragment in ("train.lr must be float", "train.batch_size must be positive", "model.n_embd",
                     "sample.top_k"):
        assert fragment in message
    assert "\n" not in message


def test_unknown_model_type_lists_valid_types():
    with pytest.raises(C.ConfigError, match="unknown model type 'transformr'.*valid types: .*mlp"):
        build_config(overrides={"model.type": "transformr"})


def test_int_is_accepted_for_float_but_not_bool_for_int():
    assert build_config(overrides={"train.lr": 1}).train.lr == 1.0
    with pytest.raises(C.ConfigError, match="batch_size must be int"):
        build_config(overrides={"train.batch_size": True})


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = build_config(overrides={"model.type": "mlp", "model.block_size": 5, "train.betas": [0.8, 0.9]})
    path = tmp_path / "resolved.yaml"
    path.write_text(C.dump_yaml(cfg))
    again = build_config(str(path))
    assert C.to_dict(again) == C.to_dict(cfg)


def test_set_override_parses_yaml_values():
    assert configfile.parse_override("train.lr=1e-2") == ("train.lr", 0.01)
    assert configfile.parse_override("train.betas=[0.9, 0.95]") == ("train.betas", [0.9, 0.95])
    with pytest.raises(C.ConfigError, match="KEY=VALUE"):
        configfile.parse_override("train.lr")


@pytest.mark.parametrize("key,value,message", [
    ("train.min_lr_ratio", 1.5, "train.min_lr_ratio must be between 0 and 1, got 1.5"),
    ("train.step_at", 0, "train.step_at must be in (0, 1], got 0"),
    ("train.step_factor", -1, "train.step_factor must be positive, got -1"),
    ("train.betas", [0.9, 1.0], "train.betas must each be in [0, 1), got [0.9, 1.0]"),
    ("train.target_loss", 0, "train.target_loss must be positive, got 0"),
    ("train.warmup_steps", -1, "train.warmup_steps must not be negative, got -1"),
    ("sample.max_length", 0, "sample.max_length must be at least 1, got 0"),
    ("sample.seed", -1, "sample.seed must be between 0 and 2**63 - 1, got -1"),
    ("data.max_length", 0, "data.max_length must be at least 1, got 0"),
    ("data.dev_fraction", 0.5, "data.dev_fraction must be between 0 and 0.5, got 0.5"),
    ("train.lr", 10**400, "train.lr must be float, got 1000"),  # an integer beyond any float
    ("train", 0, "train must be a mapping of options, got int"),
    ("model", [1], "model must be a mapping with a type key"),
    ("work_dir", 3, "work_dir must be str, got 3"),
])
def test_each_impossible_value_is_named_with_what_is_valid(key, value, message):
    with pytest.raises(C.ConfigError) as e:
        build_config(overrides={key: value})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unreadable_or_nested_yaml_and_unparsable_overrides(tmp_path):
    with pytest.raises(C.ConfigError, match="cannot read config file .*IsADirectoryError"):
        configfile.load_yaml(tmp_path)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5_000 + "]" * 5_000)  # beyond Python's recursion limit
    with pytest.raises(C.ConfigError, match="nested too deeply"):
        configfile.load_yaml(deep)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(C.ConfigError, match="the top level must be a mapping of sections"):
        configfile.load_yaml(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert configfile.load_yaml(tmp_path / "empty.yaml") == {}
    assert configfile.parse_override("sample.prefix=[a") == ("sample.prefix", "[a")  # not YAML: the text as given
    with pytest.raises(C.ConfigError, match="expected KEY=VALUE"):
        configfile.parse_override("train.lr")
