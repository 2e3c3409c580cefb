"""The GPU check script (make gpu-check): a clean one-line stop without CUDA; its checks, run on the CPU."""

from __future__ import annotations

import pytest
import torch

from benchmarks import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_cuda_it_stops_with_one_line(capsys):
    assert gpu_check.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "no CUDA GPU here" in captured.err


def test_its_checks_run_every_step_and_tabulate(tiny_file, capsys):
    assert gpu_check.main(["--device", "cpu", "--steps", "6", "--input", str(tiny_file),
                           "--models", "mlp", "bigram"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    assert set(rows) == {"mlp", "bigram"} and all(r[-1] == "ok" for r in rows.values())
    assert rows["mlp"][1] == "6" and rows["mlp"][2] == "float32"  # resumed to the last step, in float32 on a CPU


def test_a_failing_model_is_reported_in_its_row_and_the_exit_code(tiny_file, capsys):
    assert gpu_check.main(["--device", "cpu", "--steps", "4", "--input", str(tiny_file), "--models", "mlp",
                           "--dtype", "bfloat16"]) == 1
    row = capsys.readouterr().out.splitlines()[2]
    assert "FAILED: `makemore -i" in row and "--dtype bfloat16 needs a CUDA GPU" in row
    assert gpu_check.main(["--models", "gpt9", "--device", "cpu"]) == 2
