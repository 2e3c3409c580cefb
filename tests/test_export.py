"""Export: ONNX logits equal PyTorch's for every model that exports; safetensors round trip; examples/onnx_sample.py."""

import ast
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import makemore
from makemore.api import Run
from makemore.cli import main
from makemore.data import encode_items
from makemore.export import ExportError, context_width, export_onnx, export_safetensors
from makemore.models import MODELS, SequenceModel
from makemore.runs import build_config
from tests.conftest import SMALL, fitted

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("safetensors")

NOT_EXPORTABLE = {"ngram"}  # sparse tables looked up with searchsorted, which ONNX lacks
EXAMPLE = Path(__file__).parent.parent / "examples" / "onnx_sample.py"


def small_run(model_type: str, data, tmp_path) -> Run:
    """A run of the model at a test-friendly size (count models fitted), as makemore.load would give it."""
    options = MODELS[model_type].Config.__dataclass_fields__
    if issubclass(MODELS[model_type], SequenceModel):
        options = {k: v for k, v in options.items() if k != "block_size"}
    cfg = build_config(overrides={"model.type": model_type, "work_dir": str(tmp_path),
                                  **{f"model.{k}": v for k, v in SMALL.items() if k in options}})
    torch.manual_seed(0)
    model = MODELS[model_type](cfg.model, data.vocab.size, data.max_item_length)
    return Run(cfg, data, fitted(model, data), tmp_path / "model.pt")


def onnx_inputs(run: Run) -> torch.Tensor:
    """Real inputs of the width the graph reads: windows of dev items, or dev items padded to the fixed width."""
    width = context_width(run)
    if isinstance(run.model, SequenceModel):
        x, _ = encode_items(run.data.dev.items[:9], run.vocab)
        return torch.cat([x, x.new_zeros(len(x), width - x.size(1))], dim=1)
    return run.model.examples(run.data.dev).get(torch.arange(0, 45, 5))[0]


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_onnx_logits_equal_pytorch_logits(model_type, tiny_data, tmp_path):
    run = small_run(model_type, tiny_data, tmp_path)
    path = tmp_path / "model.onnx"
    if model_type in NOT_EXPORTABLE:
        with pytest.raises(ExportError, match=f"the {model_type} model cannot be exported to ONNX.*safetensors"):
            export_onnx(run, path)
        return
    export_onnx(run, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = onnx_inputs(run)
    for batch in (x, x[:1]):  # any batch size
        expected = run.model(batch)[0].detach().numpy()
        got = session.run(["logits"], {"idx": batch.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4
    meta = json.loads(session.get_modelmeta().custom_metadata_map["makemore"])
    assert meta["vocab"] == tiny_data.vocab.chars and meta["model_type"] == model_type
    assert meta["kind"] == ("sequence" if isinstance(run.model, SequenceModel) else "window")
    assert meta["context"] == x.size(1) and meta["config"]["model"]["type"] == model_type


@pytest.mark.parametrize("model_type", ["mlp", "transformer"])
def test_the_example_onnx_sampler_follows_the_model(model_type, tiny_data, tmp_path, monkeypatch, capsys):
    run = small_run(model_type, tiny_data, tmp_path)
    export_onnx(run, tmp_path / "model.onnx")
    monkeypatch.setattr(sys, "argv", ["onnx_sample.py", str(tmp_path / "model.onnx")])
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")  # as `python examples/onnx_sample.py FILE`
    printed = ast.literal_eval(capsys.readouterr().out)  # the list of words the script printed
    assert len(printed) == 10 and all(set(w) <= set(tiny_data.vocab.chars) for w in printed)
    greedy = namespace["sample_word"](temperature=1e-3)  # one-hot: the most likely character each step
    ours = run.sample(1, top_k=1)[0]
    n = min(len(greedy), len(ours))  # the two samplers cut rambling words at different lengths
    assert n > 0 and greedy[:n] == ours[:n]


@pytest.mark.parametrize("model_type", ["bnmlp", "ngram", "gru"])
def test_safetensors_round_trip_gives_identical_samples(model_type, tiny_data, tmp_path):
    run = small_run(model_type, tiny_data, tmp_path)
    path, side = export_safetensors(run, tmp_path / "model.safetensors")
    back = makemore.load(path)
    assert back.sample(30, seed=3) == run.sample(30, seed=3) and back.evaluate() == run.evaluate()
    for key, value in run.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[key], value)
    assert makemore.load(tmp_path).path == path  # a folder with the export and no checkpoint


def test_cli_export_and_sampling_from_the_export(tmp_path, tiny_file, capsys):
    work = tmp_path / "run"
    assert main(["-i", str(tiny_file), "-o", str(work), "--max-steps", "10", "--eval-interval", "10",
                 "--no-progress", "--threads", "1"]) == 0
    assert main(["export", "-o", str(work), "--format", "onnx"]) == 0
    assert main(["export", "-o", str(work), "--format", "safetensors"]) == 0
    out = capsys.readouterr().out
    for name in ("model.onnx", "model.safetensors", "model.json"):
        assert f"wrote {work / name}" in out and (work / name).exists()
    assert main(["sample", "-o", str(work / "model.safetensors"), "-n", "5", "--plain"]) == 0
    assert main(["sample", "-o", str(work), "-n", "5", "--plain"]) == 0
    both = capsys.readouterr().out.split()
    assert both[:5] == both[5:]


def test_a_missing_extra_is_a_one_line_hint(tmp_path, tiny_data, monkeypatch, capsys):
    run = small_run("mlp", tiny_data, tmp_path)
    from makemore import checkpoint

    checkpoint.save(tmp_path / "model.pt", checkpoint.make_state(run.cfg, tiny_data, run.model))
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: import raises ImportError
    assert main(["export", "-o", str(tmp_path), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'makemore[export]'" in err and "onnx" in err


def test_a_damaged_export_is_a_one_line_error(tmp_path, tiny_data, capsys):
    run = small_run("mlp", tiny_data, tmp_path)
    path, side = export_safetensors(run, tmp_path / "model.safetensors")
    side.write_text("{not json")
    assert main(["sample", "-o", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.json" in err


def test_a_model_without_an_onnx_graph_says_so_in_one_line(tmp_path, tiny_file, capfd):
    work = tmp_path / "ngram"
    assert main(["-i", str(tiny_file), "-o", str(work), "--type", "ngram", "--no-progress"]) == 0
    capfd.readouterr()
    assert main(["export", "-o", str(work), "--format", "onnx"]) == 2
    out, err = capfd.readouterr()  # file-descriptor level: the exporter's own graph dump must not get through
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "the ngram model cannot be exported to ONNX" in err and "--format safetensors" in err
    assert not (work / "model.onnx").exists()
