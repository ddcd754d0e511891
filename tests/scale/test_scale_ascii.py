"""Configurable ASCII profiles: presets, a technician's own pattern, pattern errors, fuzzing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scale.ascii_profile import Decoder, Profile, ProfileError
from drivers.scale.frames import Weight


def test_cas_preset() -> None:
    decoder = Decoder(Profile.preset("cas"))
    events = decoder.feed(b"ST,GS,+0001.50kg\r\nUS,NT,-0000.20kg\r\nOL,GS,+    .  kg\r\nST,GS,+    .  kg\r\n")
    assert events[0] == Weight(1.5, "kg", True, False, raw=b"ST,GS,+0001.50kg")
    assert (events[1].value, events[1].stable, events[1].net) == (-0.2, False, True)
    assert events[2].error == "overload" and events[2].value is None
    assert len(events) == 3 and decoder.dropped == 1  # a stable weight without a number is dropped


def test_rice_lake_preset_maps_units() -> None:
    decoder = Decoder(Profile.preset("rice-lake"))
    events = decoder.feed(b"\x02 0012.34LG \r\n\x02-0001.00KNM\r\n\x02 9999999LGO\r\n")
    assert (events[0].value, events[0].unit, events[0].stable, events[0].net) == (12.34, "lb", True, False)
    assert (events[1].value, events[1].unit, events[1].stable, events[1].net) == (-1.0, "kg", False, True)
    assert events[2].error == "overload"


def test_technicians_pattern_with_default_unit_and_tare() -> None:
    profile = Profile(r"W:(?P<weight>[-0-9. ]+) T:(?P<tare>[0-9.]+)(?P<unstable>\?)?", unit="kg")
    decoder = Decoder(profile)
    events = decoder.feed(b"W:  12.5 T:0.5\rW:  -3 T:0?\nW:abc T:1\r\n")
    assert [(e.value, e.unit, e.tare, e.stable) for e in events] == [(12.5, "kg", 0.5, True), (-3.0, "kg", 0.0, False)]
    assert decoder.dropped == 1


def test_pattern_must_match_the_whole_line() -> None:
    decoder = Decoder(Profile(r"(?P<weight>\d+) (?P<unit>kg)"))
    assert decoder.feed(b"prefix 12 kg\r\n12 kg\r\n") == [Weight(12.0, "kg", True, raw=b"12 kg")]


@pytest.mark.parametrize(
    ("pattern", "unit", "message"),
    [
        (r"(?P<weight>\d+", None, "not a valid regular expression"),
        (r"(?P<value>\d+) kg", "kg", "named group (?P<weight>"),
        (r"(?P<weight>\d+) (?P<colour>\w+)", "kg", "unknown group name(s) colour"),
        (r"(?P<weight>\d+)", None, "set `unit:`"),
    ],
)
def test_pattern_errors_say_what_to_fix(pattern: str, unit: str | None, message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        Profile(pattern, unit=unit)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["cas", "rice-lake"]))
def test_fuzz_never_raises_and_weights_come_from_matching_lines(data: bytes, preset: str) -> None:
    profile = Profile.preset(preset)
    decoder = Decoder(profile)
    for i in range(0, len(data), 9):
        for weight in decoder.feed(data[i : i + 9]):
            assert profile.parse(weight.raw) == weight
            assert profile.regex.fullmatch(weight.raw.decode("ascii"))
            assert weight.raw in re.split(rb"[\r\n]", data)
