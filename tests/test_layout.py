"""The package's layout rules, read from the source (ast): the spine never tests a model's family or names a
model type, no file grows past 400 lines, the leaves (config, data, the models) stay leaves, and no comment
quotes a timing.

Each rule is a function over (path, source) pairs, so it is also tried on a violation written for it.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from pathlib import Path

import pytest

import makemore.models as models_pkg
from makemore.mix import Mixture
from makemore.models import MODELS, Model

PACKAGE = Path(models_pkg.__file__).resolve().parent.parent
MAX_LINES = 400
# file: the makemore modules it may import (output.py, strict JSON and shortened quotes, imports nothing either)
LEAVES = {"config.py": {"output"}, "data.py": {"output"}, "configfile.py": {"config", "output"}, "output.py": set()}
MODEL_IMPORTS = {"base", "layers", "micrograd"}  # a model file's own imports: the contract, the layers, the course's
# autograd engine (the neural bigram's micrograd route)


def sources(under: Path = PACKAGE) -> list[tuple[str, str]]:
    """Every Python file of the package as (path relative to the package, source)."""
    return [(p.relative_to(under).as_posix(), p.read_text(encoding="utf-8")) for p in sorted(under.rglob("*.py"))]


def spine(files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The files outside makemore/models/."""
    return [(path, text) for path, text in files if not path.startswith("models/")]


def model_class_names() -> set[str]:
    """The names of every model class of makemore.models (families and registered types) and of Mixture."""
    names = {Mixture.__name__}
    for module in [models_pkg, *(getattr(models_pkg, n) for n in dir(models_pkg) if inspect.ismodule(
            getattr(models_pkg, n)))]:
        names |= {name for name, obj in vars(module).items() if inspect.isclass(obj) and issubclass(obj, Model)}
    return names


def _last_name(node: ast.AST) -> list[str]:
    """The class names a type argument gives: Name, module.Name, or a tuple of them."""
    if isinstance(node, ast.Tuple):
        return [n for elt in node.elts for n in _last_name(elt)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def family_tests(files: list[tuple[str, str]], classes: set[str]) -> list[str]:
    """isinstance/issubclass calls whose class argument names a model class."""
    out = []
    for path, text in files:
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "isinstance", "issubclass") and len(node.args) == 2):
                named = set(_last_name(node.args[1])) & classes
                if named:
                    out.append(f"{path}:{node.lineno} {node.func.id}(..., {', '.join(sorted(named))})")
    return out


def type_strings(files: list[tuple[str, str]], types: set[str]) -> list[str]:
    """String literals (f-strings' parts too) equal to a registered model type."""
    return [f"{path}:{node.lineno} {node.value!r}" for path, text in files for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in types]


def long_files(files: list[tuple[str, str]], limit: int = MAX_LINES) -> list[str]:
    return [f"{path}: {len(text.splitlines())} lines" for path, text in files if len(text.splitlines()) > limit]


def imported(path: str, text: str) -> set[str]:
    """The makemore modules a file imports, as paths inside the package with dots ('config', 'models.base')."""
    package = path.split("/")[:-1]  # the file's own package, inside makemore
    out = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out |= {a.name.removeprefix("makemore.") for a in node.names if a.name.split(".")[0] == "makemore"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "makemore":
                module = node.module.split(".")[1:]
            else:
                continue
            if not node.module:  # from . import config: each name is a module
                out |= {".".join([*module, a.name]) for a in node.names}
            else:
                out.add(".".join(module))
    return {m for m in out if m}


def leaf_imports(files: list[tuple[str, str]]) -> list[str]:
    """Leaves that import makemore modules beyond what they may."""
    return [f"{path} imports {', '.join(sorted(extra))}" for path, text in files if path in LEAVES
            and (extra := imported(path, text) - LEAVES[path])]


def model_file_imports(files: list[tuple[str, str]]) -> list[str]:
    """Model files that import anything of makemore but the base, the layers and micrograd."""
    out = []
    for path, text in files:
        if path.startswith("models/") and path != "models/__init__.py":
            extra = {m for m in imported(path, text) if m.removeprefix("models.").split(".")[0] not in MODEL_IMPORTS}
            if extra:
                out.append(f"{path} imports {', '.join(sorted(extra))}")
    return out


def cli_imports(files: list[tuple[str, str]]) -> list[str]:
    """Modules outside the command line (and `python -m makemore`) that import it."""
    return [f"{path} imports {m}" for path, text in files if not path.startswith("cli/") and path != "__main__.py"
            for m in sorted(imported(path, text)) if m == "cli" or m.startswith("cli.")]


FIGURE = re.compile(r"\b\d[\d.,]*(?:-[\d.]+)?\s?(?:ms|µs|us|ns|s|sec|seconds|minutes|hours)\b"
                    r"|\b\d[\d.,]*\s?[x×]\s+(?:faster|slower)\b|\bs against\b")


def timing_comments(files: list[tuple[str, str]]) -> list[str]:
    """Comments that quote a time or a speed-up: they go stale; the figures live in BENCHMARKS.md."""
    return [f"{path}:{tok.start[0]} {tok.string}" for path, text in files
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT and FIGURE.search(tok.string)]


def helper_imports(files: list[tuple[str, str]]) -> list[str]:
    """Test modules that import another test module, or the shared helpers otherwise than from tests.conftest."""
    out = []
    for path, text in files:
        for node in ast.walk(ast.parse(text)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                last = name.split(".")[-1]
                if (last.startswith("test_") or last == "conftest") and name != "tests.conftest":
                    out.append(f"{path}:{node.lineno} imports {name}")
    return out


FILES = sources()
TESTS = sources(Path(__file__).resolve().parent)


def test_the_spine_tests_no_model_family():
    assert family_tests(spine(FILES), model_class_names()) == []


def test_the_spine_names_no_model_type():
    assert type_strings(spine(FILES), set(MODELS)) == []


def test_no_file_is_longer_than_the_limit():
    assert long_files(FILES) == []


def test_config_and_data_import_nothing_of_makemore():
    assert {path for path, _ in FILES} >= set(LEAVES)
    assert leaf_imports(FILES) == []


def test_model_files_import_only_the_base_and_the_layers():
    assert model_file_imports(FILES) == []


def test_nothing_imports_the_command_line():
    assert cli_imports(FILES) == []


def test_no_comment_quotes_a_timing():
    assert timing_comments(FILES) == []


def test_tests_share_helpers_through_conftest_only():
    assert helper_imports(TESTS) == []


CLEAN = "import torch\nfrom .config import ConfigError\n"
VIOLATIONS = [  # (rule, file, a violation of it, a clean source)
    (family_tests, "mix.py", "def f(m):\n    return isinstance(m, (int, models.SequenceModel))\n",
     "def f(m):\n    return isinstance(m, torch.Tensor)\n"),
    (family_tests, "api.py", "def f(m):\n    return issubclass(type(m), Mixture)\n", CLEAN),
    (type_strings, "api.py", "def f(t):\n    return f\"{t or 'mlp'}\"\n", "x = 'a mlp run'\n"),
    (long_files, "train.py", "x = 1\n" * (MAX_LINES + 1), "x = 1\n" * MAX_LINES),
    (leaf_imports, "config.py", "from .models import MODELS\n", "import torch\n"),
    (leaf_imports, "data.py", "from . import config\n", "import torch\n"),
    (leaf_imports, "configfile.py", "import makemore.data\n", CLEAN),
    (model_file_imports, "models/mlp.py", "from ..data import Split\n",
     "from .base import Model\nfrom .layers import Linear\nfrom ..micrograd.nn import cross_entropy\n"),
    (cli_imports, "api.py", "from .cli.commands import run\n", CLEAN),
    (cli_imports, "checks/sanity.py", "from .. import cli\n", CLEAN),
    (timing_comments, "train.py", "x = 1  # 0.76-0.81 s against 0.88 s\n", "x = 1  # 3 x (B, T) batches\n"),
    (helper_imports, "test_search.py", "from tests.test_constraints import chi2_critical\n",
     "from tests.conftest import chi2_critical\n"),
    (helper_imports, "test_checks.py", "from conftest import quick_config\n", "import tests.conftest\n"),
    (timing_comments, "checkpoint.py", "x = 1  # ~100x faster than a list\n", "x = '10 s'\n"),
]


@pytest.mark.parametrize(("rule", "path", "bad", "clean"), VIOLATIONS,
                         ids=[f"{r.__name__}-{p}" for r, p, _, _ in VIOLATIONS])
def test_each_rule_finds_a_violation_written_for_it(rule, path, bad, clean):
    args = {family_tests: (model_class_names(),), type_strings: (set(MODELS),)}.get(rule, ())
    assert rule([(path, bad)], *args)
    assert rule([(path, clean)], *args) == []
