"""Where a run computes and in what precision: --device (auto: cuda, then mps, then cpu) and --dtype."""

from __future__ import annotations

import contextlib

import torch

from .config import ConfigError
from .output import shorten


def resolve_device(name: str = "auto") -> torch.device:
    """The device a name means on this machine ('auto': the first of cuda, mps, cpu it has); one-line errors."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {shorten(name)}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {shorten(name)} is not available: this machine has no CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {shorten(name)} is not available: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {shorten(name)} is not available on this machine; use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {shorten(name)} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return dev


def autocast_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype | None:
    """The autocast precision of the training step: bfloat16 on a CUDA GPU that has it, else None (float32).

    'auto' picks bfloat16 where the GPU supports it; the CPU and MPS always train in float32, so asking
    for bfloat16 there is an error rather than a silent change of precision.
    """
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if dtype == "bfloat16" and not bf16:
        raise ConfigError(f"--dtype bfloat16 needs a CUDA GPU that supports it, and this run is on {device}: "
                          f"use --dtype auto or float32")
    return torch.bfloat16 if bf16 and dtype != "float32" else None


def precision(device: torch.device, dtype: str = "auto"):
    """A context for the training step's forward pass: bfloat16 autocast where autocast_dtype says so, else none."""
    amp = autocast_dtype(device, dtype)
    return torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
