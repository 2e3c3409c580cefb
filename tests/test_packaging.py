"""A regular (non-editable) install carries the bundled data, and the default input finds it."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parent.parent


def test_wheel_install_trains_on_bundled_names_by_default(tmp_path):
    src = tmp_path / "src"  # build from a copy: the build leaves folders behind
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "out", "runs", "build", "*.egg-info",
                                                             "__pycache__", ".*cache", "tests", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("makemore-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    probe = ("import makemore.data as d; items = d.read_items(None); "
             "print(d.bundled_path().parent.parent.parent, len(items))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path / "site")}).stdout.split()
    assert Path(out[0]) == tmp_path / "site"  # the installed copy, not the checkout
    assert int(out[1]) == len((ROOT / "data" / "names.txt").read_text().split())


def test_the_declared_torch_floor_is_the_version_the_suite_runs_on():
    """The floor promises the package works there: it must be what the suite is run on (make install's pin)."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'^\s*"torch>=([\d.]+)', pyproject, re.M).group(1)
    installed = torch.__version__.split("+")[0]
    assert installed.split(".")[:2] == floor.split(".")[:2], (floor, installed)
    pin = re.search(r"pip install torch==([\d.]+)", (ROOT / "Makefile").read_text(encoding="utf-8")).group(1)
    assert pin.split(".")[:2] == floor.split(".")[:2]
