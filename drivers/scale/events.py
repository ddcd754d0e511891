"""Which weights become readings: every one, only stable ones, or one per weighing: pure.

Weighing events: a parcel placed on the scale is reported once. The scale is *empty* while the
weight is at or below `zero_band`; an item is *weighed* when the weight has been stable, at or
above `min_weight` and within `tolerance` of itself for `settle_time` (measured with the injected
clock); the next item can only be weighed after the scale went back to empty. Weights the scale
marks as bad (overload, underload, errors) are reported once when the condition starts, in every
mode except `every`, where each one is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from drivers.scale.frames import Weight

__all__ = ["Report", "ReportMode", "Reporter"]

ReportMode = Literal["every", "stable", "events"]


@dataclass(frozen=True, slots=True)
class Report:
    """A weight to emit; `event` is True for the one reading of a weighing event."""

    weight: Weight
    event: bool = False


class Reporter:
    def __init__(
        self,
        mode: ReportMode,
        *,
        clock: Callable[[], float],
        min_weight: float | None = None,
        zero_band: float = 0.0,
        settle_time: float = 0.0,
        tolerance: float = 0.0,
    ) -> None:
        if mode == "events" and (min_weight is None or min_weight <= zero_band):
            raise ValueError("weighing events need min_weight above zero_band")
        self.mode = mode
        self.clock = clock
        self.min_weight = min_weight if min_weight is not None else 0.0
        self.zero_band = zero_band
        self.settle_time = settle_time
        self.tolerance = tolerance
        self.loaded = False  # an item was weighed; waiting for the scale to be empty again
        self._candidate: float | None = None
        self._since = 0.0
        self._error: str | None = None

    def feed(self, weight: Weight) -> list[Report]:
        if weight.error is not None or weight.value is None:
            self._candidate = None
            if self.mode == "every":
                return [Report(weight)]
            if weight.error != self._error:
                self._error = weight.error
                return [Report(weight)]
            return []
        self._error = None
        if self.mode == "every":
            return [Report(weight)]
        if self.mode == "stable":
            return [Report(weight)] if weight.stable else []
        return self._event(weight, weight.value)

    def _event(self, weight: Weight, value: float) -> list[Report]:
        if value <= self.zero_band:
            self.loaded = False
            self._candidate = None
            return []
        if self.loaded:
            return []
        if not weight.stable or value < self.min_weight:
            self._candidate = None
            return []
        now = self.clock()
        if self._candidate is None or abs(value - self._candidate) > self.tolerance:
            self._candidate, self._since = value, now
        if now - self._since >= self.settle_time:
            self.loaded = True
            self._candidate = None
            return [Report(weight, event=True)]
        return []
