"""One reading per label: codes seen again within a window of their last sighting are the same label.

Pure (the clock is injectable) and thread-safe. The window runs from the *last* sighting: a
label that stays under the camera for a minute is one reading; the same code that comes back
after `window` seconds without being seen is a new label (the next parcel with that code).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["Deduper"]


class Deduper:
    def __init__(self, window: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        if window < 0:
            raise ValueError("the dedupe window cannot be negative")
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self.suppressed = 0
        self._last_seen: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def seen(self, key: Hashable, at: float | None = None) -> bool:
        """Record a sighting of `key` (at clock time `at`); True when it is a new label.

        Sightings may arrive slightly out of order (frames decoded in parallel): the last-seen
        time only moves forward, and an older sighting inside the window is not new.
        """
        now = self.clock() if at is None else at
        with self._lock:
            last = self._last_seen.get(key)
            if last is not None and now - last <= self.window:
                self._last_seen[key] = max(last, now)
                self.suppressed += 1
                return False
            self._last_seen[key] = now
            if len(self._last_seen) > self.max_keys:
                self._forget_before(now - self.window)
            return True

    def expire(self, now: float | None = None) -> None:
        """Forget codes not seen within the window (memory stays bounded on a busy line)."""
        with self._lock:
            self._forget_before((self.clock() if now is None else now) - self.window)

    def __len__(self) -> int:
        with self._lock:
            return len(self._last_seen)

    def _forget_before(self, limit: float) -> None:
        stale = [k for k, t in self._last_seen.items() if t < limit]
        for k in stale:
            del self._last_seen[k]
        if len(self._last_seen) > self.max_keys:  # still too many distinct codes inside the window
            for k in sorted(self._last_seen, key=self._last_seen.__getitem__)[: len(self._last_seen) - self.max_keys]:
                del self._last_seen[k]
