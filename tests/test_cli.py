"""The command line end to end on a tiny file, and its one-line errors."""

import json
import subprocess
import sys

import pytest

from makemore.cli import main

QUICK = ["--max-steps", "20", "--eval-interval", "10", "--batch-size", "16", "--no-progress",
         "--n-embd2", "16", "--set", "train.warmup_steps=0"]


def test_train_sample_eval_end_to_end(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "run")
    assert main(["--input", str(tiny_file), "--type", "mlp", "--work-dir", work, *QUICK]) == 0
    out = capsys.readouterr().out
    assert "train nll" in out and "test  nll" in out and "items: 240 train, 30 dev, 30 test" in out
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"model.pt", "last.pt", "config.yaml",
                                                               "results.json", "tb"}

    assert main(["sample", "--work-dir", work, "-n", "7", "--prefix", "ma", "--plain"]) == 0
    words = capsys.readouterr().out.split()
    assert len(words) == 7 and all(w.startswith("ma") for w in words)

    assert main(["eval", "--work-dir", work, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    for split in ("train", "dev", "test"):
        assert figures[split]["nll"] == pytest.approx(results[split]["nll"])
        assert figures[split]["bpc"] > figures[split]["nll"]


def test_sample_takes_the_runs_sample_section_and_flags_override_it(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "run")
    assert main(["-i", str(tiny_file), "-o", work, *QUICK, "--set", "sample.prefix=b", "--top-k", "1"]) == 0
    capsys.readouterr()

    def words(*flags):
        assert main(["sample", "-o", work, "-n", "8", "--plain", *flags]) == 0
        return capsys.readouterr().out.split()

    saved = words()  # the run's prefix and top-k 1: one greedy word, eight times
    assert len(saved) == 8 and len(set(saved)) == 1 and saved[0].startswith("b")
    flagged = words("--prefix", "ma")  # a flag wins over the saved prefix; the saved top-k still holds
    assert len(set(flagged)) == 1 and flagged[0].startswith("ma")
    assert len(set(words("--top-k", "27", "--temperature", "2"))) > 1
    assert main(["-o", work, "--sample-only"]) == 0  # makemore.py's spelling of the same command
    assert len(set(capsys.readouterr().out.split()[::2])) == 1


def test_makemore_py_flag_names(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "run")
    args = ["-i", str(tiny_file), "-o", work, "--type", "mlp", "-b", "8", "-l", "0.01", "-w", "0.0",
            "--n-embd", "6", "--n-embd2", "12", "--seed", "3", "--top-k", "3", "--device", "cpu",
            "--max-steps", "10", "--no-progress"]
    assert main(args) == 0
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    for fragment in ("batch_size: 8", "lr: 0.01", "n_embd: 6", "n_embd2: 12", "seed: 3", "top_k: 3"):
        assert fragment in resolved
    capsys.readouterr()
    assert main(["-o", work, "--sample-only"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 20


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "run")
    assert main(["-i", str(tiny_file), "-o", work, *QUICK]) == 0
    assert main(["-o", work, "--resume", "--max-steps", "30", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "at step 20" in out
    assert json.loads((tmp_path / "run" / "results.json").read_text())["final_step"] == 30


def test_times_add_up_over_every_process_of_a_run(tmp_path, tiny_file, monkeypatch):
    clock = iter(range(10**9))  # every reading of the clock is one second later: time a process takes is its work
    monkeypatch.setattr("time.perf_counter", lambda: float(next(clock)))
    work = tmp_path / "run"
    assert main(["-i", str(tiny_file), "-o", str(work), *QUICK]) == 0
    first = json.loads((work / "results.json").read_text())
    assert main(["-o", str(work), "--resume", "--max-steps", "21", "--no-progress"]) == 0  # one more step
    both = json.loads((work / "results.json").read_text())
    assert both["final_step"] == 21
    for key in ("train_seconds", "wall_seconds"):
        assert both[key] > first[key] + 1, key  # the first process's time plus the second's
    assert both["wall_seconds"] > both["train_seconds"]


def test_a_finished_run_is_not_overwritten(tmp_path, tiny_file, capsys):
    work = str(tmp_path / "run")
    assert main(["-i", str(tiny_file), "-o", work, *QUICK]) == 0
    before = (tmp_path / "run" / "model.pt").read_bytes()
    assert main(["-i", str(tiny_file), "-o", work, *QUICK]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "run" / "model.pt").read_bytes() == before


def bad_inputs(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    (tmp_path / "latin.txt").write_bytes("anna\nzoë\n".encode("latin-1"))
    (tmp_path / "dir").mkdir()
    return {
        "missing": (["--input", str(tmp_path / "nope.txt")], "does not exist"),
        "directory": (["--input", str(tmp_path / "dir")], "is a directory"),
        "empty": (["--input", str(tmp_path / "empty.txt")], "is empty"),
        "blank": (["--input", str(tmp_path / "blank.txt")], "only blank lines"),
        "utf8": (["--input", str(tmp_path / "latin.txt")], "line 2: not valid utf-8.*--encoding"),
        "type": (["--type", "transformr"], "unknown model type 'transformr'.*valid types"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "blank", "utf8", "type"])
def test_bad_input_is_one_line_exit_2(case, tmp_path, capsys):
    import re

    args, pattern = bad_inputs(tmp_path)[case]
    assert main([*args, "--work-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("makemore: error:")
    assert re.search(pattern, err), err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_python_dash_m_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "makemore", "sample", "--work-dir", "/nonexistent/run"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "no checkpoint" in proc.stderr


def test_same_seed_same_losses_across_processes(tmp_path, tiny_file):
    """Reproducible from one process to the next, not only within one (MKL's kernel choice is pinned)."""
    results = []
    for name in ("a", "b"):
        work = tmp_path / name
        subprocess.run([sys.executable, "-m", "makemore", "-i", str(tiny_file), "-o", str(work), "--type", "bnmlp",
                        "--max-steps", "40", "--eval-interval", "20", "--no-progress"], check=True, capture_output=True)
        results.append(json.loads((work / "results.json").read_text()))
    assert [results[0][s]["nll"] for s in ("train", "dev", "test")] == [results[1][s]["nll"]
                                                                       for s in ("train", "dev", "test")]
    probe = "import makemore, os, torch; print(os.environ['MKL_CBWR'])"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "AVX2,STRICT"


def test_harness_commands_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    cases = [(["diagnose", str(tmp_path / "nope")], "is not a run folder"),
             (["diagnose", str(tmp_path / "empty"), "--no-plots"], "nothing to diagnose"),
             (["sweep", "configs/sweeps/mlp-grid.yaml", "--config", "configs/mlp.yaml"], "drop --config")]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_ctrl_c_outside_training_exits_130_in_one_line(monkeypatch, capsys):
    import makemore.cli.commands as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load", interrupted)
    assert main(["eval", "-o", "anywhere"]) == 130
    assert capsys.readouterr().err == "makemore: interrupted\n"
