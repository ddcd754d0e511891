"""Tag presence: many reads of a tag in front of a portal → arrived / present / departed events.

Pure: no I/O and no clock of its own. Reads carry their capture time; `expire(now)` is called with
the current time (the driver passes time.time(), the tests a controlled clock) and returns the
departures and periodic updates that are due. `clock` is only used when a read or `expire()` is
given no time.

A *visit* is the span from a tag's first read to its departure: `count` is the number of reads in
the visit so far, `first_seen`/`last_seen` its first and latest read, `rssi` the strongest read
(dBm) and `antenna` the antenna of that strongest read; `antennas` lists every antenna that saw it.
With `per_antenna`, each (EPC, antenna) pair has visits of its own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PresenceEvent", "PresenceTracker", "Visit"]

EventKind = Literal["arrived", "present", "departed"]
Key = tuple[bytes, int]  # (EPC, antenna or 0)


@dataclass(slots=True)
class Visit:
    epc: bytes
    antenna: int  # of the strongest read
    rssi: float | None  # strongest read, dBm
    first_seen: float
    last_seen: float
    count: int = 0
    antennas: set[int] = field(default_factory=set)
    next_update: float = 0.0


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    event: EventKind
    epc: bytes
    antenna: int
    rssi: float | None
    count: int
    first_seen: float
    last_seen: float
    antennas: tuple[int, ...]
    ts: float  # when the event happened: the read that made the tag arrive, or the expiry time


class PresenceTracker:
    """Visits of the tags currently in the field, in order of their latest read."""

    def __init__(
        self,
        *,
        absent_after: float,
        update_every: float | None = None,
        per_antenna: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if absent_after <= 0:
            raise ValueError("absent_after must be positive")
        if update_every is not None and update_every <= 0:
            raise ValueError("update_every must be positive")
        self.absent_after = absent_after
        self.update_every = update_every
        self.per_antenna = per_antenna
        self.clock = clock
        # Ordered by last read (move_to_end on every read): departures are found from the front.
        self._by_last_read: OrderedDict[Key, Visit] = OrderedDict()
        # Ordered by due update (all intervals equal: moved to the end when updated).
        self._by_update: OrderedDict[Key, Visit] = OrderedDict()
        self.arrivals = 0
        self.departures = 0

    def __len__(self) -> int:
        return len(self._by_last_read)

    def __contains__(self, epc: bytes) -> bool:
        return any(key[0] == epc for key in self._by_last_read)

    def visits(self) -> list[Visit]:
        return list(self._by_last_read.values())

    def observe(
        self, epc: bytes, antenna: int, rssi: float | None, ts: float | None = None, count: int = 1
    ) -> PresenceEvent | None:
        """One read (or `count` reads aggregated by the reader); the arrival event when it is new."""
        now = self.clock() if ts is None else ts
        key = (epc, antenna if self.per_antenna else 0)
        visit = self._by_last_read.get(key)
        if visit is None:
            visit = Visit(epc, antenna, rssi, now, now, count, {antenna})
            self._by_last_read[key] = visit
            if self.update_every is not None:
                visit.next_update = now + self.update_every
                self._by_update[key] = visit
            self.arrivals += 1
            return _event("arrived", visit, now)
        visit.count += count
        visit.last_seen = max(visit.last_seen, now)
        visit.antennas.add(antenna)
        if rssi is not None and (visit.rssi is None or rssi > visit.rssi):
            visit.rssi = rssi
            visit.antenna = antenna
        self._by_last_read.move_to_end(key)
        return None

    def expire(self, now: float | None = None) -> list[PresenceEvent]:
        """Departures (not read for `absent_after`) and periodic updates due at `now`."""
        if now is None:
            now = self.clock()
        events: list[PresenceEvent] = []
        limit = now - self.absent_after
        by_last, by_update = self._by_last_read, self._by_update
        while by_last:
            key, visit = next(iter(by_last.items()))
            if visit.last_seen > limit:
                break
            del by_last[key]
            by_update.pop(key, None)
            self.departures += 1
            events.append(_event("departed", visit, visit.last_seen + self.absent_after))
        if self.update_every is not None:
            while by_update:
                key, visit = next(iter(by_update.items()))
                if visit.next_update > now:
                    break
                events.append(_event("present", visit, now))
                visit.next_update += self.update_every
                if visit.next_update <= now:  # the loop was late: do not burst to catch up
                    visit.next_update = now + self.update_every
                by_update.move_to_end(key)
        return events

    def depart_all(self, now: float | None = None) -> list[PresenceEvent]:
        """Every visit ends now (reader lost or driver stopping): departures, oldest read first."""
        ts = self.clock() if now is None else now
        events = [_event("departed", visit, ts) for visit in self._by_last_read.values()]
        self.departures += len(events)
        self._by_last_read.clear()
        self._by_update.clear()
        return events


def _event(kind: EventKind, visit: Visit, ts: float) -> PresenceEvent:
    return PresenceEvent(
        kind,
        visit.epc,
        visit.antenna,
        visit.rssi,
        visit.count,
        visit.first_seen,
        visit.last_seen,
        tuple(sorted(visit.antennas)),
        ts,
    )
