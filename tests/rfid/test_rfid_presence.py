"""Arrival, periodic presence and departure of tags, on a clock the test controls."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rfid.presence import PresenceTracker

A = bytes.fromhex("3074257BF7194E4000001A85")
B = bytes.fromhex("E200301666130121155074EF")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_arrival_then_departure_after_absent_after() -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=2.0, clock=clock)
    arrived = tracker.observe(A, 1, -60)
    assert arrived is not None and arrived.event == "arrived" and arrived.count == 1 and arrived.ts == 1000.0
    for step in range(1, 11):
        clock.now = 1000.0 + step * 0.1
        assert tracker.observe(A, 2, -55 if step == 5 else -62) is None
    assert tracker.expire() == []
    clock.now = 1003.0 - 0.001
    assert tracker.expire() == []
    clock.now = 1003.0
    (departed,) = tracker.expire()
    assert departed.event == "departed"
    assert departed.count == 11
    assert departed.first_seen == 1000.0 and departed.last_seen == 1001.0
    assert departed.ts == 1003.0
    assert departed.rssi == -55 and departed.antenna == 2 and departed.antennas == (1, 2)
    assert len(tracker) == 0 and tracker.arrivals == 1 and tracker.departures == 1
    clock.now = 1010.0
    again = tracker.observe(A, 1, -60)
    assert again is not None and again.event == "arrived" and again.first_seen == 1010.0


def test_periodic_updates_while_present() -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=2.0, update_every=5.0, clock=clock)
    tracker.observe(A, 1, -60)
    events = []
    for tick in range(1, 121):  # 12 s in 100 ms steps, the tag read every step
        clock.now = 1000.0 + tick * 0.1
        tracker.observe(A, 1, -60)
        events += tracker.expire()
    assert [e.event for e in events] == ["present", "present"]
    assert [round(e.ts, 6) for e in events] == [1005.0, 1010.0]
    assert events[1].count == 101


def test_per_antenna_visits() -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=1.0, per_antenna=True, clock=clock)
    assert tracker.observe(A, 1, -60) is not None
    assert tracker.observe(A, 2, -60) is not None  # the same tag on another antenna: its own visit
    assert tracker.observe(A, 1, -60) is None
    clock.now += 0.5
    tracker.observe(A, 2, -60)
    clock.now += 0.6
    (gone,) = tracker.expire()
    assert gone.antenna == 1 and gone.event == "departed"


def test_expire_is_ordered_by_latest_read() -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=1.0, clock=clock)
    tracker.observe(A, 1, -60)
    tracker.observe(B, 1, -60)
    clock.now += 0.5
    tracker.observe(A, 1, -60)  # A read again: B now has the oldest read
    clock.now += 0.6
    (gone,) = tracker.expire()
    assert gone.epc == B
    assert A in tracker and B not in tracker


def test_depart_all() -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=5.0, update_every=1.0, clock=clock)
    tracker.observe(A, 1, -60)
    tracker.observe(B, 1, None, count=4)
    events = tracker.depart_all(1001.0)
    assert [(e.epc, e.event, e.count, e.ts) for e in events] == [(A, "departed", 1, 1001.0), (B, "departed", 4, 1001.0)]
    assert len(tracker) == 0 and tracker.expire(2000.0) == []


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from([A, B, b"\x01\x02"]), st.integers(1, 4), st.floats(0, 3, allow_nan=False)),
        max_size=60,
    )
)
def test_every_arrival_has_one_departure_and_reads_add_up(reads: list[tuple[bytes, int, float]]) -> None:
    clock = Clock()
    tracker = PresenceTracker(absent_after=1.5, clock=clock)
    events = []
    for epc, antenna, gap in reads:
        clock.now += gap
        events += tracker.expire()
        event = tracker.observe(epc, antenna, -60)
        if event is not None:
            events.append(event)
    events += tracker.expire(clock.now + 10)
    for epc in (A, B, b"\x01\x02"):
        kinds = [e.event for e in events if e.epc == epc]
        assert kinds == ["arrived", "departed"] * (len(kinds) // 2)
        departed = [e for e in events if e.epc == epc and e.event == "departed"]
        assert sum(e.count for e in departed) == sum(1 for r in reads if r[0] == epc)
