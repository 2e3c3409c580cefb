"""What makemore writes for people and programs to read: strict JSON, and long inputs quoted shortened."""

from __future__ import annotations

import json
import math


def finite(obj):
    """obj with every NaN or infinite float replaced by None, through dicts, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj


def nan_for_null(obj):
    """The inverse of finite for records of numbers only: every None (a NaN written as null) read back as NaN."""
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {key: nan_for_null(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(value) for value in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """Strict JSON (RFC 8259): null where a number is NaN or infinite, never the bare NaN strict parsers refuse."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def shorten(value, width: int = 40) -> str:
    """A user's input quoted for a one-line message (as repr quotes it), cut to its first and last width/2
    characters and its length when longer: a 10,000-character word must not swamp the terminal."""
    half = width // 2
    if not isinstance(value, str):  # a YAML list or mapping: its repr, cut the same way
        text = repr(value)
        return text if len(text) <= width + 2 else f"{text[:half]}…{text[-half:]} ({len(text):,} characters)"
    if len(value) <= width:
        return repr(value)
    return f"{value[:half] + '…' + value[-half:]!r} ({len(value):,} characters)"
