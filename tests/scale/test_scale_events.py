"""Report logic: every weight, stable weights only, or one reading per item weighed (fake clock)."""

from __future__ import annotations

import pytest

from drivers.scale.events import Reporter
from drivers.scale.frames import Weight


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def w(value: float | None, stable: bool = True, error: str | None = None) -> Weight:
    return Weight(value, "kg", stable, error=error)


def run(reporter: Reporter, clock: Clock, weights: list[Weight], step: float = 0.1) -> list[tuple[float | None, bool]]:
    out = []
    for weight in weights:
        out += [(r.weight.value, r.event) for r in reporter.feed(weight)]
        clock.now += step
    return out


def test_every_reports_everything() -> None:
    clock = Clock()
    weights = [w(0), w(1, False), w(1), w(None, error="overload"), w(None, error="overload")]
    assert len(run(Reporter("every", clock=clock), clock, weights)) == 5


def test_stable_drops_motion_and_reports_errors_once() -> None:
    clock = Clock()
    weights = [w(1, False), w(2), w(None, error="overload"), w(None, error="overload"), w(2), w(2, False)]
    assert run(Reporter("stable", clock=clock), clock, weights) == [(2, False), (None, False), (2, False)]


def test_one_event_per_parcel() -> None:
    clock = Clock()
    reporter = Reporter("events", clock=clock, min_weight=0.5, zero_band=0.05)
    parcel = [w(0.0), w(0.3, False), w(2.4, False), w(2.5), w(2.5), w(2.5), w(2.5), w(1.0, False), w(0.0)]
    assert run(reporter, clock, parcel * 3) == [(2.5, True)] * 3


def test_no_event_below_min_weight_and_no_second_event_until_empty() -> None:
    clock = Clock()
    reporter = Reporter("events", clock=clock, min_weight=1.0, zero_band=0.1)
    # a light item, then a parcel, then a second parcel added without emptying the scale
    weights = [w(0.4), w(0.4), w(0.0), w(3.0), w(3.0), w(5.0, False), w(6.0), w(0.08), w(6.0)]
    assert run(reporter, clock, weights) == [(3.0, True), (6.0, True)]


def test_settle_time_and_tolerance() -> None:
    clock = Clock()
    reporter = Reporter("events", clock=clock, min_weight=1.0, settle_time=0.25, tolerance=0.01)
    # 2.00 → 2.005 stays the same item; 2.1 restarts the settle timer
    weights = [w(2.0), w(2.005), w(2.1), w(2.1), w(2.1), w(2.1)]
    assert run(reporter, clock, weights) == [(2.1, True)]
    assert clock.now == pytest.approx(100.6)


def test_errors_cancel_a_settling_item_and_are_reported_once() -> None:
    clock = Clock()
    reporter = Reporter("events", clock=clock, min_weight=1.0, settle_time=0.15)
    weights = [w(5.0), w(None, error="overload"), w(None, error="overload"), w(5.0), w(5.0), w(5.0)]
    assert run(reporter, clock, weights) == [(None, False), (5.0, True)]


def test_events_need_a_min_weight_above_zero_band() -> None:
    with pytest.raises(ValueError, match="min_weight"):
        Reporter("events", clock=Clock(), min_weight=None)
    with pytest.raises(ValueError, match="min_weight"):
        Reporter("events", clock=Clock(), min_weight=0.1, zero_band=0.1)
