"""MT-SICS replies as the reference manual writes them, partial lines, garbage and fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scale.frames import Reply, ScaleError, Weight
from drivers.scale.mt_sics import Decoder, command, parse_line


def test_commands_end_with_cr_lf() -> None:
    assert command("S") == b"S\r\n"
    assert command("SI") == b"SI\r\n"
    assert command("SIR") == b"SIR\r\n"
    assert command("Z") == b"Z\r\n"
    assert command("T") == b"T\r\n"


def test_weight_replies() -> None:
    assert parse_line(b"S S     100.00 g") == Weight(100.0, "g", True, raw=b"S S     100.00 g")
    assert parse_line(b"S D     129.07 g") == Weight(129.07, "g", False, raw=b"S D     129.07 g")
    negative = parse_line(b"S S    -12.340 kg")
    assert isinstance(negative, Weight) and negative.value == -12.34 and negative.unit == "kg"
    detached = parse_line(b"S D  -    0.5 lb")
    assert isinstance(detached, Weight) and detached.value == -0.5 and not detached.stable
    padded = parse_line(b"S  S   1.5   kg  ")
    assert isinstance(padded, Weight) and padded.value == 1.5 and padded.unit == "kg"


def test_overload_underload_and_busy() -> None:
    over, under = parse_line(b"S +"), parse_line(b"S -")
    assert isinstance(over, Weight) and over.error == "overload" and over.value is None
    assert isinstance(under, Weight) and under.error == "underload" and under.value is None
    busy = parse_line(b"S I")
    assert isinstance(busy, ScaleError) and busy.code == "not_executable"


def test_zero_and_tare_replies() -> None:
    zeroed = parse_line(b"Z A")
    assert isinstance(zeroed, Reply) and zeroed.ok and zeroed.command == "Z"
    for status in ("I", "+", "-"):
        reply = parse_line(b"Z " + status.encode())
        assert isinstance(reply, Reply) and not reply.ok and reply.status == status
    tared = parse_line(b"T S     100.00 g")
    assert isinstance(tared, Reply) and tared.ok and tared.value == 100.0 and tared.unit == "g"
    for status in ("I", "+", "-"):
        reply = parse_line(b"T " + status.encode())
        assert isinstance(reply, Reply) and not reply.ok and reply.command == "T"


def test_error_replies() -> None:
    codes = {b"ES": "syntax", b"ET": "transmission", b"EL": "logical"}
    for line, code in codes.items():
        error = parse_line(line)
        assert isinstance(error, ScaleError) and error.code == code


def test_malformed_lines_are_never_weights() -> None:
    for line in (
        b"S S",
        b"S S 100.00",
        b"S S abc g",
        b"S S 1.2.3 g",
        b"S X 100.00 g",
        b"S S 100.00 g extra",
        b"S S nan g",
        b"S S inf g",
        b"S S 1e5 g",
        b"S S 100.00 \x01g",
        b"\xffS S 100.00 g",
        b"T S",
        b"Z Q",
        b"ES extra",
        b"s s 1 g",
    ):
        assert parse_line(line) is None, line


def test_other_replies_are_ignored_not_dropped() -> None:
    decoder = Decoder()
    assert decoder.feed(b'I4 A "B021002593"\r\nS S 1.00 g\r\n') == [Weight(1.0, "g", True, raw=b"S S 1.00 g")]
    assert decoder.ignored == 1 and decoder.dropped == 0


def test_partial_lines_across_feeds_and_resync_after_garbage() -> None:
    decoder = Decoder()
    assert decoder.feed(b"S S   ") == []
    assert decoder.feed(b"  12.5") == []
    events = decoder.feed(b"0 kg\r\n\x00\xfe garbage \x13\r\nS D 1.00 kg\r\nS S ")
    assert [e.value for e in events if isinstance(e, Weight)] == [12.5, 1.0]
    assert decoder.dropped == 1
    assert decoder.feed(b"2.00 kg\r\n")[0] == Weight(2.0, "kg", True, raw=b"S S 2.00 kg")


def test_overlong_line_is_dropped_whole() -> None:
    decoder = Decoder()
    assert decoder.feed(b"x" * 200) == []
    # the tail of the over-long line must not be read as a weight
    assert decoder.feed(b"S S 100.00 g\r\nS S 5.00 g\r\n") == [Weight(5.0, "g", True, raw=b"S S 5.00 g")]
    assert decoder.dropped == 1


def test_seven_bit_even_parity_stripped() -> None:
    line = b"S S     100.00 g\r\n"
    with_parity = bytes(b | 0x80 if b.bit_count() % 2 else b for b in line)
    assert with_parity != line
    assert Decoder().feed(with_parity) == []  # read as 8 bits the line is garbage
    decoder = Decoder(data_parity="even")
    assert decoder.feed(with_parity) == [Weight(100.0, "g", True, raw=line.rstrip())]
    odd = Decoder(data_parity="odd")
    assert odd.feed(with_parity * 8) == [] and odd.dropped >= 1  # every byte fails: not even a line end


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=20))
def test_fuzz_garbage_never_raises_and_weights_come_from_whole_lines(data: bytes, cuts: list[int]) -> None:
    decoder = Decoder()
    events = []
    rest = data
    for cut in cuts:
        events += decoder.feed(rest[:cut])
        rest = rest[cut:]
    events += decoder.feed(rest)
    lines = {line.rstrip(b"\r") for line in data.split(b"\n")[:-1]}
    for event in events:
        assert event.raw in lines
        assert parse_line(event.raw) == event


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=30).filter(lambda b: b"\n" not in b),
            st.floats(-99999, 99999, allow_nan=False).map(lambda v: round(v, 2)),
        ),
        max_size=10,
    )
)
def test_fuzz_valid_lines_survive_interleaved_garbage(items: list[tuple[bytes, float]]) -> None:
    stream = b"".join(garbage + b"\r\n" + f"S S {value:.2f} kg\r\n".encode() for garbage, value in items)
    weights = [e for e in Decoder().feed(stream) if isinstance(e, Weight) and e.raw.startswith(b"S S ")]
    # garbage lines may themselves be valid replies; the generated weights are all found in order
    values = [w.value for w in weights]
    it = iter(values)
    assert all(any(v == value for v in it) for _, value in items)
