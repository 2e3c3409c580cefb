"""Reading experiment files and --set overrides into the raw nested mapping that config.resolve validates.

YAML is read with a safe loader (plain data only) that reads 1e-3 as a float, as YAML 1.2 does.
Imports only config (for ConfigError), so both stay free of the models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError
from .output import shorten


class SafeLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (no Python objects), reading 1e-3 as a float as YAML 1.2 does."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - SafeLoader subclass: safe


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with safe_load (no Python objects), with a one-line error on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: check the path") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text; save the config file as UTF-8") from None
    except (IsADirectoryError, PermissionError) as e:
        raise ConfigError(f"cannot read config file {path}: {e.__class__.__name__}") from None
    try:
        raw = safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply; a config is a few flat sections") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(e, yaml.constructor.ConstructorError):  # e.g. !!python/object: refused, never built
            raise ConfigError(f"{path}: refused YAML{where}: {e.problem}; a config holds plain numbers, strings, "
                              f"lists and mappings only: remove the tag") from None
        raise ConfigError(f"{path}: invalid YAML{where}: {e.problem}; fix the syntax there") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (data, model, train, sample)")
    return raw


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Set raw['a']['b'] = value for key 'a.b', creating sections as needed."""
    *parents, last = key.split(".")
    node = raw
    for p in parents:
        child = node.get(p)
        if not isinstance(child, dict):
            child = node[p] = {}
        node = child
    node[last] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'train.lr=0.01' -> ('train.lr', 0.01); the value is read as YAML so numbers stay numbers."""
    if "=" not in text:
        raise ConfigError(f"--set {shorten(text)}: expected KEY=VALUE, e.g. --set train.lr=0.01")
    key, value = text.split("=", 1)
    try:
        return key.strip(), safe_load(value)
    except (yaml.YAMLError, RecursionError):
        return key.strip(), value
