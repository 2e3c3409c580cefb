"""The front door cannot rot: the README's size and models table, its commands, the links, docs/cli.md."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from makemore.cli import HANDLERS
from makemore.cli.parser import build_parser
from makemore.cli.reference import reference
from makemore.models import MODELS

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def code_blocks(text: str) -> list[str]:
    """The contents of every fenced code block."""
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)


def command_lines(text: str) -> list[str]:
    """Each `makemore ...` or `torchrun ... -m makemore ...` line of the code blocks, continuations joined."""
    lines = []
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith(("makemore", "torchrun")):
                lines.append(line)
    return lines


def makemore_argv(line: str) -> list[str]:
    """The arguments after `makemore` (or after torchrun's `-m makemore`), a trailing comment cut."""
    words = shlex.split(line, comments=True)
    if words[0] == "torchrun":
        words = words[words.index("-m") + 1:]
    argv = words[1:]
    if not argv or argv[0] not in HANDLERS:
        argv.insert(0, "train")
    return argv


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    header = next(i for i, line in enumerate(lines) if line.startswith("| `--type`"))
    assert header < 120, f"the models table starts at line {header + 1}, past the first 120"
    rows = [line for line in lines[header + 2:] if line.startswith("|")]
    listed = [re.match(r"\| `(\w+)`", row).group(1) for row in rows[:len(MODELS)]]
    assert sorted(listed) == sorted(MODELS), "the models table lists every registered model, once"


README_COMMANDS = command_lines(README.read_text(encoding="utf-8"))


def test_the_readme_has_commands_to_check():
    assert len(README_COMMANDS) >= 10, README_COMMANDS


@pytest.mark.parametrize("line", README_COMMANDS)
def test_every_readme_command_parses_and_names_files_that_exist(line):
    args = build_parser().parse_args(makemore_argv(line))  # argparse exits (a test failure) on a bad flag
    for value in vars(args).values():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and path.startswith(("configs/", "data/", "examples/")):
                assert (ROOT / path).exists(), f"{line!r} names {path}, which is not in the repository"


def links(path: Path) -> list[str]:
    """The relative targets of the Markdown links in a file, anchors cut."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
    return [t.split("#")[0] for t in targets if not t.startswith(("http:", "https:", "#", "mailto:"))]


@pytest.mark.parametrize("path", [README, ROOT / "BENCHMARKS.md", ROOT / "RELIABILITY.md", *DOCS], ids=lambda p: p.name)
def test_every_link_points_to_a_file_that_exists(path):
    missing = [t for t in links(path) if not (path.parent / t).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"


def test_the_cli_reference_is_what_help_prints():
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == reference(), "docs/cli.md is stale: python -m makemore.cli.reference > docs/cli.md"


def test_the_command_check_catches_a_wrong_flag():
    with pytest.raises(SystemExit):
        build_parser().parse_args(makemore_argv("makemore sample --work-dir out/x --no-such-flag"))
    assert code_blocks("```\nmakemore -h\n```\n") == ["makemore -h\n"]
