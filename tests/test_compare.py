"""compare: one table of finished runs, sorted by dev NLL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from makemore.cli import main
from makemore.compare import COLUMNS, by_dev_nll, compare_runs, markdown_table, write_csv
from makemore.config import ConfigError


def fake_run(folder: Path, dev: float, kind: str = "mlp") -> Path:
    folder.mkdir(parents=True)
    splits = {s: {"nll": dev + d, "bpc": (dev + d) / 0.693} for s, d in (("train", -0.1), ("dev", 0.0), ("test", 0.01))}
    results = {"type": kind, "params": 1234, "steps": 100, "train_seconds": 1.0, "wall_seconds": 2.5, **splits}
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return folder


def test_compare_sorts_by_dev_nll_from_a_parent_folder(tmp_path):
    for name, dev in (("a", 2.3), ("b", 2.1), ("nested/c", 2.2)):
        fake_run(tmp_path / name, dev)
    (tmp_path / "unfinished").mkdir()
    rows = compare_runs([tmp_path])
    assert [Path(r["run"]).name for r in rows] == ["b", "c", "a"]
    assert [r["dev_nll"] for r in rows] == sorted(r["dev_nll"] for r in rows)


def test_compare_explicit_folders_and_outputs(tmp_path, capsys):
    a, b = fake_run(tmp_path / "a", 2.5, "bigram"), fake_run(tmp_path / "b", 2.0)
    assert main(["compare", str(a), str(b), "--csv", str(tmp_path / "t.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("|")[1].strip() == "run"
    assert str(b) in lines[2] and str(a) in lines[3]  # header, rule, then best first
    csv_text = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert csv_text[0] == ",".join(COLUMNS) and csv_text[1].startswith(str(b))


def test_missing_results_are_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no finished runs"):
        compare_runs([tmp_path / "empty"])
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_rows_without_dev_loss_sort_last_and_render(tmp_path):
    rows = sorted([{"run": "x", "dev_nll": None}, {"run": "y", "dev_nll": 3.0}], key=by_dev_nll)
    assert [r["run"] for r in rows] == ["y", "x"]
    table = markdown_table(rows, ["run", "dev_nll"])
    assert table.splitlines()[2].split("|")[2].strip() == "3.0000"
    assert table.splitlines()[3].split("|")[2].strip() == "-"
    write_csv(rows, ["run", "dev_nll"], tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()[2] == "x,"


def test_compare_sweep_and_the_benchmarks_share_one_renderer():
    from benchmarks.common import table

    rows = [{"run": "a", "params": 1234, "dev_nll": 2.0}, {"run": "b", "params": 56, "dev_nll": None}]
    md = markdown_table(rows, ["run", "params", "dev_nll"])
    assert md.splitlines()[1] == "|-----|-------:|--------:|"  # numbers right-aligned, padded to the widest cell
    assert table(["run", "params", "dev_nll"], [["a", "1,234", "2.0000"], ["b", "56", "-"]]) == md
    mixed = table(["x", "note"], [["13.6×", "— (no matmul)"], ["—", "38.6%"]])
    assert mixed.splitlines()[1] == "|------:|---------------|"  # a column with words in it stays left-aligned


@pytest.mark.parametrize("text,message", [("{not json", "cannot read .*results.json: JSONDecodeError"),
                                          ("[1, 2]", "results.json is not a makemore results file")])
def test_a_damaged_results_file_is_a_one_line_error(text, message, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        compare_runs([tmp_path / "run"])
