"""Durations and sizes as technicians write them (`200ms`, `2s`, `5m`, `64MB`).

Kept in one place so every driver accepts the same spellings and reports the same errors.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Duration", "Size", "parse_duration", "parse_size"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from `250ms`, `2s`, `5m`, `1h`; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 200ms, 2s or 5m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or (unit and unit not in _DURATION_UNITS):
            raise ValueError(f"{value!r} is not a duration: expected e.g. 200ms, 2s, 5m, 1h")
        seconds = float(match.group(1)) * _DURATION_UNITS[unit or "s"]
    else:
        raise ValueError("expected a duration such as 200ms, 2s or 5m")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from `512MB`, `64MiB`, `100kB`; a bare number means bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MB or 512MiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or (unit and unit not in _SIZE_UNITS):
            raise ValueError(f"{value!r} is not a size: expected e.g. 64MB, 512MiB, 2GB")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit or "b"])
    else:
        raise ValueError("expected a size such as 64MB or 512MiB")
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


def _format_seconds(value: float) -> str:
    if value and value < 1:
        return f"{round(value * 1000)}ms"
    return f"{value:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(_format_seconds, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "description": "seconds"},
                {"type": "string", "pattern": r"^\s*[0-9.]+\s*(ms|s|m|min|h|d)?\s*$"},
            ],
            "description": "a duration: 200ms, 2s, 5m, 1h (a bare number is seconds)",
        }
    ),
]
"""Seconds, written in YAML as `200ms`, `2s`, `5m`."""

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "description": "bytes"},
                {"type": "string", "pattern": r"^\s*[0-9.]+\s*([kKmMgG]i?[bB]|[bB])?\s*$"},
            ],
            "description": "a size: 64MB, 512MiB, 2GB (a bare number is bytes)",
        }
    ),
]
"""Bytes, written in YAML as `64MB`, `512MiB`."""
