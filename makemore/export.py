"""Ship a trained run: an ONNX graph of its next-character logits, or its weights as safetensors.

ONNX: input "idx" (int64), output "logits" (float32), batch size free.
  - window models (bigram, mlp, wavenet, ...): idx (B, context), the previous `context` tokens,
    boundary-padded on the left -> logits (B, V) of the next one;
  - sequence models (transformer, rnn, ...): idx (B, context), the boundary token then the word,
    zero-padded to the fixed width `context` -> logits (B, context, V), one prediction a position.
The model's metadata key "makemore" holds JSON: kind, context, vocab (token i is vocab[i - 1]; token 0
is the word boundary), model type and config.

safetensors: model.safetensors (the weights) beside model.json (config, vocabulary and split);
makemore.load reads the pair back as a run, with no pickle anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from . import config as C
from .output import dumps, shorten

ONNX_FORMAT, SAFETENSORS_FORMAT, VERSION = "makemore-onnx", "makemore-safetensors", 1
FORMATS = ("onnx", "safetensors")
OUTPUT_HINT = "check that the folder of --output exists and can be written, or choose another --output"


class ExportError(ValueError):
    """A run that cannot be exported in the asked format, or a missing optional package."""


def require(name: str):
    """Import an optional package of the export extra, or fail with a one-line hint."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ExportError(f"this needs the {name} package: pip install 'makemore[export]'") from None


@contextlib.contextmanager
def silent_stdout():
    """Send whatever is written to file descriptor 1 to nowhere, C code's too (the exporter prints its whole
    graph there when it fails), then restore it."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class Logits(nn.Module):
    """A model's forward pass without the loss: idx -> logits, the graph ONNX records."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)[0]


def context_width(run) -> int:
    """Tokens an exported graph reads: a window model's block, or a sequence model's fixed number of positions."""
    return run.model.context_width(run.data.max_item_length)


def onnx_metadata(run) -> dict:
    return {"format": ONNX_FORMAT, "version": VERSION, "model_type": run.cfg.model_type,
            "kind": run.model.kind,
            "context": context_width(run), "vocab": run.vocab.chars, "config": C.to_dict(run.cfg)}


def export_onnx(run, path: str | Path) -> Path:
    """Write the run's next-character logits as an ONNX graph, with its vocabulary and config as metadata."""
    onnx = require("onnx")
    meta = onnx_metadata(run)
    # a CPU copy (the run's model stays where it is), in eval mode, the wrapper too: export records its mode
    model = Logits(copy.deepcopy(run.model)).cpu().eval()
    example = torch.zeros(2, meta["context"], dtype=torch.long)
    buffer, chatter = io.BytesIO(), io.StringIO()  # Python's warnings and messages: the error line says it all
    axes = {"idx": {0: "batch"}, "logits": {0: "batch"}}
    try:
        with warnings.catch_warnings(), silent_stdout(), contextlib.redirect_stderr(chatter):
            warnings.simplefilter("ignore")  # tracer and deprecation warnings: the test against onnxruntime decides
            torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["idx"], output_names=["logits"],
                              dynamic_axes=axes, opset_version=17)
    except Exception as e:  # noqa: BLE001 - any exporter failure means: this model has no ONNX graph
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"the {run.cfg.model_type} model cannot be exported to ONNX ({first}); "
                          f"use --format safetensors") from None
    graph = onnx.load_from_string(buffer.getvalue())
    entry = graph.metadata_props.add()
    entry.key, entry.value = "makemore", dumps(meta)
    path = Path(path)
    checkpoint.atomic_write(path, lambda f: f.write(graph.SerializeToString()), "ONNX file", OUTPUT_HINT)
    return path


def export_safetensors(run, path: str | Path) -> tuple[Path, Path]:
    """Write the weights (path, .safetensors) and a JSON of config, vocabulary and split beside it (.json)."""
    st = require("safetensors.torch")
    path = Path(path)
    # clones: safetensors refuses tensors that share memory (tied weights), and wants them contiguous
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in run.model.state_dict().items()}
    meta = {"format": SAFETENSORS_FORMAT, "version": VERSION, "model_type": run.cfg.model_type,
            "config": C.to_dict(run.cfg), "vocab": run.vocab.chars,
            "items": {name: "\n".join(split.items) for name, split in run.data.splits.items()},
            "duplicates": run.data.duplicates}
    checkpoint.atomic_write(path, lambda f: f.write(st.save(weights)), "safetensors file", OUTPUT_HINT)
    side = path.with_suffix(".json")
    checkpoint.save_text(side, dumps(meta) + "\n", "export JSON", OUTPUT_HINT)
    return path, side


def read_safetensors(path: str | Path) -> dict:
    """A safetensors export as a checkpoint state (see checkpoint.restore), checked as a checkpoint is."""
    st = require("safetensors.torch")
    path = Path(path)
    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise checkpoint.CheckpointError(f"{side} is missing or not JSON: a safetensors export is the pair "
                                         f"{path.name} and {side.name}; export again") from None
    if not isinstance(meta, dict) or meta.get("format") != SAFETENSORS_FORMAT or meta.get("version") != VERSION:
        raise checkpoint.CheckpointError(f"{side} is not a makemore safetensors export (version {VERSION})")
    try:
        weights = st.load(path.read_bytes())
    except Exception:  # noqa: BLE001 - a damaged file can fail in any way: all mean unreadable
        raise checkpoint.CheckpointError(f"{path} is not a readable safetensors file; export again") from None
    state = {**meta, "format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": weights, "step": 0}
    bad = checkpoint.malformed(state)
    if bad:
        raise checkpoint.CheckpointError(f"{side} is damaged ({bad}); export again")
    return state


def export(run, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Export a run in fmt ('onnx' or 'safetensors') to out (default: beside its checkpoint); the files written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {shorten(fmt)}: use onnx or safetensors")
    if not run.model.standalone:  # a mixture (makemore mix): its parts are runs of their own
        raise ExportError("a mixture is not exported as one model: export each of its runs")
    if run.labels:
        raise ExportError("a labelled run is not exported yet (the exported model has no label input): "
                          "sample and score it with makemore, or serve it with makemore serve")
    folder = run.path.parent if run.path is not None else Path(".")
    out = Path(out) if out is not None else folder / f"model.{fmt}"
    if fmt == "onnx":
        return [export_onnx(run, out)]
    return list(export_safetensors(run, out))
