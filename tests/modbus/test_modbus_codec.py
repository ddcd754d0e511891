"""Register encoding (every type and order against known images) and the read planner."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import (
    ReadRequest,
    Span,
    decode_registers,
    encode_registers,
    pack_bits,
    plan_reads,
    scale_value,
    split_request,
    unscale_value,
)

ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]

# 123.456f = 0x42F6E979, the image from the issue.
FLOAT32_IMAGES = {
    "ABCD": [0x42F6, 0xE979],
    "CDAB": [0xE979, 0x42F6],
    "BADC": [0xF642, 0x79E9],
    "DCBA": [0x79E9, 0xF642],
}
# 0x0102030405060708 as uint64 / int64.
INT64_IMAGES = {
    "ABCD": [0x0102, 0x0304, 0x0506, 0x0708],
    "CDAB": [0x0708, 0x0506, 0x0304, 0x0102],
    "BADC": [0x0201, 0x0403, 0x0605, 0x0807],
    "DCBA": [0x0807, 0x0605, 0x0403, 0x0201],
}


@pytest.mark.parametrize("order", ORDERS)
def test_float32_image_of_the_issue(order: str) -> None:
    assert encode_registers(123.456, "float32", order) == FLOAT32_IMAGES[order]
    assert decode_registers(FLOAT32_IMAGES[order], "float32", order) == 123.456


@pytest.mark.parametrize("order", ORDERS)
def test_64_bit_images(order: str) -> None:
    value = 0x0102030405060708
    assert encode_registers(value, "uint64", order) == INT64_IMAGES[order]
    assert decode_registers(INT64_IMAGES[order], "uint64", order) == value
    assert decode_registers(INT64_IMAGES[order], "int64", order) == value


@pytest.mark.parametrize("order", ORDERS)
def test_32_bit_integer_images(order: str) -> None:
    # 0x89ABCDEF: unsigned 2309737967, signed -1985229329
    image = {
        "ABCD": [0x89AB, 0xCDEF],
        "CDAB": [0xCDEF, 0x89AB],
        "BADC": [0xAB89, 0xEFCD],
        "DCBA": [0xEFCD, 0xAB89],
    }[order]
    assert decode_registers(image, "uint32", order) == 0x89ABCDEF
    assert decode_registers(image, "int32", order) == 0x89ABCDEF - 2**32
    assert encode_registers(-1985229329, "int32", order) == image


@pytest.mark.parametrize("order", ORDERS)
def test_float64_image(order: str) -> None:
    raw = struct.pack(">d", -1234.5678)  # C0 93 4A 45 6D 5C FA AD
    abcd = [int.from_bytes(raw[k : k + 2], "big") for k in range(0, 8, 2)]
    assert abcd == [0xC093, 0x4A45, 0x6D5C, 0xFAAD]
    image = encode_registers(-1234.5678, "float64", order)
    assert decode_registers(image, "float64", order) == -1234.5678
    if order == "DCBA":
        assert image == [0xADFA, 0x5C6D, 0x454A, 0x93C0]


def test_16_bit_types_bits_and_bools() -> None:
    assert decode_registers([0xFFFE], "int16") == -2
    assert decode_registers([0xFFFE], "uint16") == 65534
    assert encode_registers(-2, "int16") == [0xFFFE]
    assert decode_registers([0b1000], "bool", bit=3) is True
    assert decode_registers([0b1000], "bool", bit=2) is False
    assert decode_registers([1], "bool") is True
    assert pack_bits([True, False, True] + [False] * 5 + [True]) == bytes([0b101, 0b1])


def test_strings_two_characters_per_register_and_byte_swap() -> None:
    image = [0x4C49, 0x4E45, 0x2D31, 0x0000]  # "LINE-1" + NUL padding
    assert decode_registers(image, "string") == "LINE-1"
    swapped = [0x494C, 0x454E, 0x312D, 0x0000]
    assert decode_registers(swapped, "string", byte_swap=True) == "LINE-1"
    assert encode_registers("LINE-1", "string", length=4) == image
    assert encode_registers("LINE-1", "string", length=4, byte_swap=True) == swapped
    assert decode_registers([0x4142, 0x2020], "string") == "AB"  # trailing blanks go too
    with pytest.raises(ValueError, match="do not fit"):
        encode_registers("TOO LONG", "string", length=2)


def test_range_checks_on_encoding() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_registers(70000, "uint16")
    with pytest.raises(ValueError, match="out of range"):
        encode_registers(-1, "uint32")
    with pytest.raises(ValueError, match="integer"):
        encode_registers(1.5, "int16")
    with pytest.raises(ValueError, match="fit"):
        encode_registers(1e300, "float32")


def test_scale_and_offset() -> None:
    assert scale_value(15.0, 0.1, 0) == 1.5
    assert scale_value(3, 0.1, 0) == 0.3  # not 0.30000000000000004
    assert scale_value(385, 0.1, -273.15) == -234.65
    assert scale_value(7, 1.0, 0.0) == 7 and isinstance(scale_value(7, 1.0, 0.0), int)
    assert scale_value(7, 2.0, 1.0) == 15 and isinstance(scale_value(7, 2.0, 1.0), int)
    assert unscale_value(1.5, "float32", 0.1, 0) == pytest.approx(15.0)
    assert unscale_value(-234.65, "int16", 0.1, -273.15) == 385
    assert unscale_value(12.0, "uint16", 1.0, 0.0) == 12


NUMERIC = ["int16", "uint16", "int32", "uint32", "int64", "uint64"]
BOUNDS = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


@given(st.sampled_from(NUMERIC), st.sampled_from(ORDERS), st.data())
def test_integers_round_trip(dtype: str, order: str, data: st.DataObject) -> None:
    low, high = BOUNDS[dtype]
    value = data.draw(st.integers(low, high))
    words = encode_registers(value, dtype, order)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_registers(words, dtype, order) == value


@given(st.sampled_from(ORDERS), st.floats(allow_nan=False, allow_infinity=False))
def test_float64_round_trip(order: str, value: float) -> None:
    assert decode_registers(encode_registers(value, "float64", order), "float64", order) == value


@given(st.sampled_from(ORDERS), st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trip_is_the_same_float32(order: str, value: float) -> None:
    decoded = decode_registers(encode_registers(value, "float32", order), "float32", order)
    assert isinstance(decoded, float)
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


@given(st.sampled_from(ORDERS), st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4))
def test_any_register_image_decodes_and_reencodes(order: str, words: list[int]) -> None:
    for dtype in ("uint64", "int64", "uint32", "int32"):
        n = 4 if "64" in dtype else 2
        value = decode_registers(words[:n], dtype, order)
        assert isinstance(value, int)
        assert encode_registers(value, dtype, order) == words[:n]


# -- planning -----------------------------------------------------------------------------------


def spans(*items: tuple[str, str, int, int]) -> list[Span]:
    return [Span(*item) for item in items]


def test_points_of_one_table_are_joined_across_small_gaps() -> None:
    plan = plan_reads(
        spans(
            ("a", "holding", 0, 2),
            ("b", "holding", 4, 2),  # gap of 2 registers: filled
            ("c", "holding", 20, 8),  # gap of 14 > 8: new request
            ("d", "input", 10, 2),
            ("e", "coil", 0, 1),
            ("f", "coil", 50, 1),  # gap of 49 bits <= 64: joined
        ),
        max_fill=8,
        max_fill_bits=64,
    )
    assert [(r.table, r.address, r.count) for r in plan] == [
        ("coil", 0, 51),
        ("holding", 0, 6),
        ("holding", 20, 8),
        ("input", 10, 2),
    ]
    assert [s.key for s in plan[1].spans] == ["a", "b"]


def test_requests_never_exceed_125_registers_or_2000_coils() -> None:
    regs = [Span(f"r{k}", "holding", 2 * k, 2) for k in range(100)]  # 200 contiguous registers
    coils = [Span(f"c{k}", "coil", k, 1) for k in range(4500)]
    plan = plan_reads(regs + coils, max_fill=0)
    holding = [r for r in plan if r.table == "holding"]
    assert [r.count for r in holding] == [124, 76]  # a uint32 is never cut in half
    assert [r.count for r in plan if r.table == "coil"] == [2000, 2000, 500]
    # 100 holding registers = 50 uint32 points: one request.
    assert len(plan_reads([Span(f"p{k}", "holding", 2 * k, 2) for k in range(50)])) == 1


def test_max_registers_is_respected_and_overlapping_points_share_a_request() -> None:
    plan = plan_reads(
        spans(("w", "holding", 10, 1), ("bit0", "holding", 10, 1), ("x", "holding", 11, 2)), max_registers=2
    )
    assert [(r.address, r.count, len(r.spans)) for r in plan] == [(10, 1, 2), (11, 2, 1)]
    with pytest.raises(ValueError, match="exceed"):
        plan_reads(spans(("big", "holding", 0, 4)), max_registers=2)


def test_split_request_gives_one_request_per_distinct_range() -> None:
    request = ReadRequest(
        "holding", 0, 12, (Span("a", "holding", 0, 2), Span("b0", "holding", 5, 1), Span("b1", "holding", 5, 1))
    )
    parts = split_request(request)
    assert [(p.address, p.count, [s.key for s in p.spans]) for p in parts] == [(0, 2, ["a"]), (5, 1, ["b0", "b1"])]


@given(
    st.lists(
        st.tuples(st.sampled_from(["holding", "input", "coil"]), st.integers(0, 3000), st.integers(1, 4)),
        max_size=60,
    ),
    st.integers(0, 20),
    st.integers(1, 125),
)
def test_plan_covers_every_point_exactly_once_within_limits(
    items: list[tuple[str, int, int]], fill: int, max_registers: int
) -> None:
    points = [Span(f"p{k}", t, a, 1 if t == "coil" else min(n, max_registers)) for k, (t, a, n) in enumerate(items)]
    plan = plan_reads(points, max_fill=fill, max_fill_bits=fill * 16, max_registers=max_registers)
    seen = [s.key for r in plan for s in r.spans]
    assert sorted(seen) == sorted(p.key for p in points)
    for request in plan:
        assert request.count <= (2000 if request.table == "coil" else max_registers)
        for span in request.spans:
            assert span.table == request.table
            assert request.address <= span.address and span.end <= request.end
