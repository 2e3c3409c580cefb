"""One self-describing checkpoint file: weights, model type and config, vocabulary, splits,
training state. Written atomically; read with weights_only=True so a file can never run code."""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

from . import config as C
from .data import DataError, Dataset, Vocab
from .labeled import label_names
from .models import DEFAULT_MODEL, MODELS, Model, create_model

FORMAT = "makemore-checkpoint"
VERSION = 1
REQUIRED = ("model_type", "config", "vocab", "items", "model", "step")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, foreign, or cannot be written."""


def make_state(cfg: C.Config, data: Dataset, model: Model, optimizer=None, step: int = 0,
               best_dev_loss: float | None = None, rng: dict | None = None, seconds: dict | None = None) -> dict:
    """Everything needed to sample, evaluate or resume without the data file or any flag.

    seconds: {"train": ..., "wall": ...} spent on the run so far, over every process that worked on it.
    """
    return {
        "format": FORMAT, "version": VERSION,
        "model_type": cfg.model_type, "config": C.to_dict(cfg),
        "vocab": list(data.vocab.chars),
        # one string a split: items never hold a newline, and one string pickles far faster than a list of them
        "items": {name: "\n".join(split.items) for name, split in data.splits.items()},
        "duplicates": data.duplicates,
        **({"labels": list(data.labels), "item_labels": {name: "\n".join(label_names(data, split))
                                                         for name, split in data.splits.items()}}
           if data.labels else {}),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step, "best_dev_loss": best_dev_loss, "rng": rng or {}, "seconds": seconds or {},
    }


WORK_DIR_HINT = "free space or pick another --work-dir"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], what: str = "checkpoint",
                 hint: str = WORK_DIR_HINT) -> None:
    """Write to a temporary file beside path, flush it to disk, then atomically replace path.

    A crash at any instant leaves either the old file or the new one, never a torn one; a failed
    write (e.g. a full disk) removes the temporary file and keeps the old one. Only this process's
    temporary file is ever removed here: another's may be in flight (those of dead processes are
    removed by the run folder's lock, runs.RunLock).
    """
    path = Path(path)
    existed = path.exists()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        kept = f"; the previous {what} is unchanged" if existed else ""  # said only when there was one
        raise CheckpointError(f"could not write {what} {path}: {e.strerror or e}{kept}; {hint}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)  # e.g. a second Ctrl-C mid-write: the old file stands, leave no temp file
        raise


def save(path: str | Path, state: dict) -> None:
    """Save a checkpoint atomically (see atomic_write)."""
    atomic_write(path, lambda f: torch.save(state, f))


def save_text(path: str | Path, text: str, what: str = "file", hint: str = WORK_DIR_HINT) -> None:
    """Save a small text file (config, results) atomically, with the same one-line error on failure."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), what, hint)


def load(path: str | Path) -> dict:
    """Read and validate a checkpoint; refuse anything that is not plain makemore data."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: train one first (makemore --work-dir {path.parent}) "
                              f"or point --work-dir at a run folder")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; our error says it in one line
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path} was refused: it holds Python objects beyond plain tensors and numbers, "
                              f"which could run code; only load checkpoints made by makemore") from None
    except Exception:  # noqa: BLE001 - a damaged file can make the unpickler fail in any way: all mean unreadable
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or not a torch file); "
                              f"use another checkpoint, e.g. last.pt, or train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a makemore checkpoint; point --work-dir at a makemore run folder")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint layout version {state.get('version')!r}, this makemore "
                              f"reads version {VERSION}; retrain with this version")
    bad = malformed(state)
    if bad:
        raise CheckpointError(f"{path} is damaged or from another makemore version ({bad}); "
                              f"use another checkpoint, e.g. last.pt, or train again")
    return state


def malformed(state: dict) -> str | None:
    """What is wrong with a version-1 checkpoint's fields, so restore never meets a surprise type."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        return f"no {', '.join(missing)}"
    for key, kind in (("model_type", str), ("config", dict), ("vocab", list), ("items", dict), ("model", dict),
                      ("step", int)):
        if not isinstance(state[key], kind):
            return f"{key} is a {type(state[key]).__name__}, not a {kind.__name__}"
    if not all(isinstance(c, str) and len(c) == 1 for c in state["vocab"]):
        return "vocab is not a list of characters"
    items = state["items"]
    if not all(isinstance(items.get(s), str) and items[s] for s in ("train", "dev", "test")):
        return "items lacks a train, dev or test split"
    labels, item_labels = state.get("labels"), state.get("item_labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)
                                   and isinstance(item_labels, dict)
                                   and all(isinstance(item_labels.get(s), str) for s in ("train", "dev", "test"))):
        return "labels is not a list of names with each split's item labels"
    seconds = state.get("seconds", {})
    if not isinstance(seconds, dict) or not all(isinstance(v, (int, float)) for v in seconds.values()):
        return "seconds is not a mapping of times"
    return None


def restore(state: dict, device: str = "cpu") -> tuple[C.Config, Dataset, Model]:
    """Rebuild the config, the dataset (from the stored splits) and the model with its weights."""
    try:
        cfg = C.resolve(state["config"], MODELS, DEFAULT_MODEL)
    except C.ConfigError as e:
        raise CheckpointError(f"the checkpoint's config does not fit this makemore: {e}") from None
    vocab = Vocab(list(state["vocab"]))
    items = state["items"]
    try:
        splits = [items[name].split("\n") for name in ("train", "dev", "test")]
        labels, item_labels = state.get("labels"), None
        if labels:
            item_labels = tuple(state["item_labels"][name].split("\n") for name in ("train", "dev", "test"))
        data = Dataset.from_splits(vocab, *splits, state.get("duplicates", 0), labels, item_labels)
    except (DataError, KeyError):
        raise CheckpointError("the checkpoint's items have characters its vocabulary lacks; the file is damaged, "
                              "use another checkpoint or train again") from None
    model = create_model(cfg.model_type, cfg.model, vocab.size, data.max_item_length, data.labels)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError):
        raise CheckpointError(f"the checkpoint's weights do not match a {cfg.model_type} model with its config; "
                              f"the file is damaged or from another version") from None
    return cfg, data, model.to(device).eval()  # ready to sample or evaluate; train() switches back
