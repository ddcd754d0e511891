"""Register encoding and read planning: pure functions, no sockets, no serial, no clock.

Byte and word orders of 32/64-bit values (A is the most significant byte; registers as they
arrive, each register's high byte first):

    123.456f = 0x42F6E979   ABCD: 42F6 E979   CDAB: E979 42F6   BADC: F642 79E9   DCBA: 79E9 F642

For 64-bit values the same rule applies to four registers: CDAB reverses the register order,
BADC swaps the bytes of each register, DCBA does both (fully little-endian).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ReadRequest",
    "Span",
    "decode_registers",
    "describe_exception",
    "encode_registers",
    "make_decoder",
    "pack_bits",
    "plan_reads",
    "scale_value",
    "split_request",
    "unscale_value",
]

_INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")

Value = int | float | str | bool


def _swap16(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def _to_canonical(words: Sequence[int], order: str) -> list[int]:
    """Registers as they arrive → registers in ABCD (big-endian) order. Each order is its own inverse."""
    out = list(words)
    if order in ("CDAB", "DCBA"):
        out.reverse()
    if order in ("BADC", "DCBA"):
        out = [_swap16(w) for w in out]
    return out


def _fold(words: Sequence[int]) -> int:
    value = 0
    for w in words:
        value = (value << 16) | w
    return value


def _short_float32(value: float) -> float:
    """The shortest decimal that is the same float32 (123.456, not 123.45600128173828)."""
    if not math.isfinite(value):
        return value
    packed = _F32.pack(value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if _F32.pack(candidate) == packed:
            return candidate
    return value


def decode_registers(
    words: Sequence[int],
    dtype: str,
    order: str = "ABCD",
    *,
    bit: int | None = None,
    byte_swap: bool = False,
    encoding: str = "ascii",
) -> Value:
    """The raw value (before scale/offset) of `dtype` in `words` (16-bit register values)."""
    return make_decoder(dtype, order, bit=bit, byte_swap=byte_swap, encoding=encoding, length=len(words))(words, 0)


def make_decoder(
    dtype: str,
    order: str = "ABCD",
    *,
    bit: int | None = None,
    byte_swap: bool = False,
    encoding: str = "ascii",
    length: int = 1,
) -> Callable[[Sequence[int], int], Value]:
    """A function (registers, start index) → raw value, specialised once per point (the hot path)."""
    if bit is not None:
        mask = 1 << bit
        return lambda regs, i: bool(regs[i] & mask)
    if dtype == "bool":
        return lambda regs, i: bool(regs[i])
    if dtype == "uint16":
        return lambda regs, i: int(regs[i])
    if dtype == "int16":
        return lambda regs, i: regs[i] - 0x10000 if regs[i] & 0x8000 else int(regs[i])
    if dtype == "string":

        def string(regs: Sequence[int], i: int) -> Value:
            data = bytearray()
            for w in regs[i : i + length]:
                data += bytes((w & 0xFF, w >> 8)) if byte_swap else bytes((w >> 8, w & 0xFF))
            return bytes(data).rstrip(b"\x00 ").decode(encoding, errors="replace")

        return string
    width = _WIDTH.get(dtype)
    if width is None:
        raise ValueError(f"unknown type {dtype!r}")
    if order == "ABCD":

        def canonical(regs: Sequence[int], i: int) -> int:
            return _fold(regs[i : i + width])
    else:

        def canonical(regs: Sequence[int], i: int) -> int:
            return _fold(_to_canonical(regs[i : i + width], order))

    if dtype == "float32":
        return lambda regs, i: _short_float32(_F32.unpack(canonical(regs, i).to_bytes(4, "big"))[0])
    if dtype == "float64":
        return lambda regs, i: float(_F64.unpack(canonical(regs, i).to_bytes(8, "big"))[0])
    if dtype.startswith("int"):
        sign = 1 << (16 * width - 1)
        full = 1 << (16 * width)
        return lambda regs, i: (v - full) if (v := canonical(regs, i)) & sign else v
    return canonical


def encode_registers(
    value: Value,
    dtype: str,
    order: str = "ABCD",
    *,
    length: int | None = None,
    byte_swap: bool = False,
    encoding: str = "ascii",
) -> list[int]:
    """Registers that hold raw `value` as `dtype`; ValueError when it does not fit."""
    if dtype == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected text for a string point, not {type(value).__name__}")
        data = value.encode(encoding)
        size = 2 * (length or math.ceil(len(data) / 2) or 1)
        if len(data) > size:
            raise ValueError(f"{len(data)} bytes do not fit in {size // 2} registers")
        data = data.ljust(size, b"\x00")
        pairs = [(data[k], data[k + 1]) for k in range(0, size, 2)]
        return [(lo << 8) | hi if byte_swap else (hi << 8) | lo for hi, lo in pairs]
    if dtype == "bool":
        return [1 if _as_bool(value) else 0]
    width = _WIDTH.get(dtype)
    if width is None:
        raise ValueError(f"unknown type {dtype!r}")
    if dtype.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number for {dtype}, not {value!r}")
        fmt = _F32 if dtype == "float32" else _F64
        try:
            raw = int.from_bytes(fmt.pack(float(value)), "big")
        except OverflowError as err:
            raise ValueError(f"{value!r} does not fit in {dtype}") from err
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer for {dtype}, not {value!r}")
        low, high = _INT_RANGES[dtype]
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {dtype} ({low}..{high})")
        raw = value & ((1 << (16 * width)) - 1)
    words = [(raw >> (16 * (width - 1 - k))) & 0xFFFF for k in range(width)]
    return words if width == 1 else _to_canonical(words, order)  # `order` is for 32/64-bit values


def _as_bool(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected true or false, not {value!r}")


def scale_value(raw: Value, scale: float, offset: float) -> Value:
    """value = raw * scale + offset; integers stay integers when scale and offset are whole numbers."""
    if (scale == 1.0 and offset == 0.0) or isinstance(raw, str | bool):
        return raw
    if isinstance(raw, int) and scale.is_integer() and offset.is_integer():
        return raw * int(scale) + int(offset)
    value = raw * scale + offset
    # 12 significant digits hide binary noise (0.30000000000000004) without losing register precision.
    return float(f"{value:.12g}") if math.isfinite(value) else value


def unscale_value(value: Value, dtype: str, scale: float, offset: float) -> Value:
    """The raw register value for engineering `value` (inverse of scale_value), for writes."""
    if dtype in ("string", "bool") or (scale == 1.0 and offset == 0.0):
        if dtype.startswith(("int", "uint")) and isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {value!r}")
    if scale == 0:
        raise ValueError("scale 0 cannot be inverted")
    raw = (value - offset) / scale
    if dtype.startswith("float"):
        return raw
    return round(raw)


def pack_bits(bits: Iterable[bool]) -> bytes:
    """Coils/discrete inputs as Modbus packs them: the first bit is the least significant of byte 0."""
    out = bytearray()
    for k, b in enumerate(bits):
        if k % 8 == 0:
            out.append(0)
        if b:
            out[-1] |= 1 << (k % 8)
    return bytes(out)


# -- read planning ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """What one point occupies: `count` registers (or bits) of `table` from `address`."""

    key: str
    table: str
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read covering the spans of several points (and the gaps between them)."""

    table: str
    address: int
    count: int
    spans: tuple[Span, ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(
    spans: Iterable[Span],
    *,
    max_fill: int = 8,
    max_fill_bits: int = 64,
    max_registers: int = 125,
    max_bits: int = 2000,
) -> list[ReadRequest]:
    """As few requests as possible: points of one table are joined when the gap between them is at
    most `max_fill` registers (`max_fill_bits` bits) and the request stays within the size limit."""
    by_table: dict[str, list[Span]] = {}
    for span in spans:
        by_table.setdefault(span.table, []).append(span)
    requests: list[ReadRequest] = []
    for table in ("coil", "discrete", "holding", "input"):
        group = sorted(by_table.pop(table, []), key=lambda s: (s.address, -s.count, s.key))
        bits = table in ("coil", "discrete")
        fill, limit = (max_fill_bits, max_bits) if bits else (max_fill, max_registers)
        current: list[Span] = []
        start = end = 0
        for span in group:
            if span.count > limit:
                raise ValueError(f"{span.key}: {span.count} registers exceed the {limit} of one request")
            if current and span.address - end <= fill and max(end, span.end) - start <= limit:
                current.append(span)
                end = max(end, span.end)
                continue
            if current:
                requests.append(ReadRequest(table, start, end - start, tuple(current)))
            current, start, end = [span], span.address, span.end
        if current:
            requests.append(ReadRequest(table, start, end - start, tuple(current)))
    if by_table:
        raise ValueError(f"unknown table(s): {', '.join(sorted(by_table))}")
    return requests


def split_request(request: ReadRequest) -> list[ReadRequest]:
    """One request per distinct range of the request's points, for when the joined read is refused
    (exception 02: a filled gap, or one point, is not a valid address)."""
    ranges: dict[tuple[int, int], list[Span]] = {}
    for span in request.spans:
        ranges.setdefault((span.address, span.count), []).append(span)
    return [ReadRequest(request.table, a, c, tuple(s)) for (a, c), s in sorted(ranges.items())]


def describe_exception(code: int) -> str:
    return _EXCEPTIONS.get(code, f"exception {code:02d}")


_EXCEPTIONS = {
    1: "exception 01 (illegal function)",
    2: "exception 02 (illegal data address)",
    3: "exception 03 (illegal data value)",
    4: "exception 04 (server device failure)",
    5: "exception 05 (acknowledge)",
    6: "exception 06 (server device busy)",
    8: "exception 08 (memory parity error)",
    10: "exception 0A (gateway path unavailable)",
    11: "exception 0B (gateway target device failed to respond)",
}
