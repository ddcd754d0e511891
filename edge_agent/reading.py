"""The Reading record drivers produce, and its JSON form on the wire.

A reading is captured by a driver without `seq`/`id`: those are assigned when the outbox commits
it, so that `seq` has no gaps for readings the gateway accepted and continues across restarts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal

import orjson

__all__ = ["Quality", "Reading", "ReadingEncoder", "format_ts"]

Quality = Literal["good", "uncertain", "bad"]

# Fields a driver's `extra` may not override: they belong to the envelope.
RESERVED_FIELDS = frozenset({"id", "seq", "ts", "device", "kind", "value", "quality", "unit"})


class Reading:
    """One value from one device at one instant (gateway clock, seconds since the epoch)."""

    __slots__ = ("device", "extra", "kind", "quality", "ts", "unit", "value")

    def __init__(
        self,
        device: str,
        kind: str,
        value: Any,
        *,
        ts: float | None = None,
        quality: Quality = "good",
        unit: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.device = device
        self.kind = kind
        self.value = value
        self.ts = time.time() if ts is None else ts
        self.quality = quality
        self.unit = unit
        self.extra = extra

    def __repr__(self) -> str:
        return (
            f"Reading(device={self.device!r}, kind={self.kind!r}, value={self.value!r}, "
            f"ts={self.ts!r}, quality={self.quality!r}, unit={self.unit!r}, extra={self.extra!r})"
        )


def format_ts(ts: float) -> str:
    """UTC ISO 8601 with milliseconds, as readings carry it."""
    millis = int(ts * 1000)
    second = millis // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)) + f"{millis - second * 1000:03d}Z"


class ReadingEncoder:
    """Encodes committed readings as comma-joined JSON objects, ready to splice into a batch."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway

    def encode(self, first_seq: int, readings: Iterable[Reading]) -> bytes:
        # Per-reading hot path: locals, and the timestamp prefix formatted once per second.
        dumps = orjson.dumps
        id_prefix = self.gateway + ":"
        parts: list[bytes] = []
        append = parts.append
        seq = first_seq
        last_second = -1
        prefix = ""
        for r in readings:
            millis = int(r.ts * 1000)
            second = millis // 1000
            if second != last_second:
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
                last_second = second
            obj: dict[str, Any] = {
                "id": id_prefix + str(seq),
                "seq": seq,
                "ts": f"{prefix}{millis - second * 1000:03d}Z",
                "device": r.device,
                "kind": r.kind,
                "value": r.value,
                "quality": r.quality,
            }
            if r.unit is not None:
                obj["unit"] = r.unit
            if r.extra:
                for key, val in r.extra.items():
                    if key not in RESERVED_FIELDS:
                        obj[key] = val
            append(dumps(obj, default=_json_default))
            seq += 1
        return b",".join(parts)

    def message(self, device: str, fragments: Iterable[bytes]) -> bytes:
        """One MQTT payload: `{"gateway","device","readings":[...]}` from encoded fragments."""
        head = orjson.dumps({"gateway": self.gateway, "device": device})[:-1]
        return head + b',"readings":[' + b",".join(fragments) + b"]}"


def _json_default(value: Any) -> Any:
    """Values drivers may hand over that JSON has no type for."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a reading")
