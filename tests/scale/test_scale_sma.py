"""SMA (SCP-0499) replies: every status, gross/net and motion field, errors, fuzzing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scale.frames import Reply, ScaleError, Weight
from drivers.scale.sma import Decoder, command, parse_reply


def frame(status: str, range_: str, gross_net: str, motion: str, weight: str, unit: str) -> bytes:
    """<LF><s><r><n><m><f><xxxxxx.xxx><uuu><CR>, fields padded as the standard fixes them."""
    return f"\n{status}{range_}{gross_net}{motion} {weight:>10}{unit:<3}\r".encode()


def test_requests() -> None:
    assert command("W") == b"\nW\r"
    assert command("Z") == b"\nZ\r"
    assert command("T") == b"\nT\r"


def test_example_replies_from_the_standard() -> None:
    assert Decoder().feed(b"\n 1G       5.025lb \r") == [Weight(5.025, "lb", True, False, raw=b" 1G       5.025lb ")]
    zero = Decoder().feed(b"\nZ1G       0.000lb \r")[0]
    assert isinstance(zero, Weight) and zero.value == 0.0 and zero.error is None
    moving = Decoder().feed(b"\n 1GM      7.650kg \r")[0]
    assert isinstance(moving, Weight) and not moving.stable and moving.unit == "kg"


@pytest.mark.parametrize("status", list(" ZOUEIT"))
def test_every_status_gross_net_motion(status: str) -> None:
    for gross_net, motion in itertools.product("GNgn", " M"):
        weight_field = "----------" if status in "EIT" else "-12.50"
        weight = parse_reply(frame(status, "1", gross_net, motion, weight_field, "kg")[1:-1])
        assert isinstance(weight, Weight)
        assert weight.net is (gross_net in "Nn") and weight.stable is (motion == " ")
        expected_error = {"O": "overload", "U": "underload", "E": "zero_error", "I": "initial_zero_error"}
        expected_error["T"] = "tare_error"
        assert weight.error == expected_error.get(status)
        assert weight.value == (None if status in "EIT" else -12.5)


def test_tare_weight_reply_and_errors() -> None:
    tare = parse_reply(frame(" ", "1", "T", " ", "2.000", "kg")[1:-1])
    assert isinstance(tare, Reply) and tare.ok and tare.value == 2.0
    assert parse_reply(b"?") == ScaleError("unrecognized", "the scale does not support this command (?)", b"?")
    error = parse_reply(b"!")
    assert isinstance(error, ScaleError) and error.code == "transmission"
    assert parse_reply(b"SMA:2/1.0") == "ignored"


def test_malformed_replies() -> None:
    good = frame(" ", "1", "G", " ", "5.025", "lb")[1:-1]
    assert isinstance(parse_reply(good), Weight)
    for bad in (
        good[:-1],  # short
        good + b" ",  # long
        b"X" + good[1:],  # unknown status
        good[:1] + b"0" + good[2:],  # range 0
        good[:2] + b"X" + good[3:],  # unknown gross/net
        good[:3] + b"Q" + good[4:],  # unknown motion
        good.replace(b"5.025", b"5.0x5"),
        good.replace(b"lb ", b"1b "),
        frame(" ", "1", "G", " ", "----------", "kg")[1:-1],  # dashes without an error status
    ):
        assert parse_reply(bad) is None, bad


def test_partial_frames_resync_and_counts() -> None:
    decoder = Decoder()
    one = frame(" ", "1", "N", " ", "1.5", "kg")
    assert decoder.feed(b"noise" + one[:7]) == []
    assert [w.value for w in decoder.feed(one[7:]) if isinstance(w, Weight)] == [1.5]
    # a frame cut short by the next LF is dropped, the next one is read
    events = decoder.feed(one[:10] + one)
    assert [w.value for w in events if isinstance(w, Weight)] == [1.5]
    assert decoder.dropped == 2
    assert decoder.feed(b"\nMFG:ACME\r") == [] and decoder.ignored == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_never_raises_and_weights_pass_every_check(data: bytes) -> None:
    decoder = Decoder()
    for i in range(0, len(data), 5):
        for event in decoder.feed(data[i : i + 5]):
            assert parse_reply(event.raw) == event
            assert b"\n" + event.raw + b"\r" in data


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), st.integers(-99999, 999999)),
        max_size=8,
    )
)
def test_fuzz_valid_frames_survive_garbage_without_lf(items: list[tuple[bytes, int]]) -> None:
    stream = b"".join(garbage + frame(" ", "1", "G", " ", f"{v / 1000:.3f}", "kg") for garbage, v in items)
    weights = [e for e in Decoder().feed(stream) if isinstance(e, Weight)]
    assert [round((w.value or 0) * 1000) for w in weights] == [v for _, v in items]
