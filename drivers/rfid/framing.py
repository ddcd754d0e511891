"""The framing loop the serial reader protocols share, sans-I/O.

Each protocol's frames start with a fixed byte and announce their length in a short header; a
protocol module says how long a frame is and how to check it, the loop here does the rest: find
the start byte (counting the bytes skipped on the way), wait for a whole frame, and drop a frame
whose header or check is wrong, resynchronising on the next start byte (which may lie inside the
dropped frame). No serial, no clock: bytes in, frames out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

__all__ = ["EventDecoder", "FrameSplitter"]

F = TypeVar("F")
E = TypeVar("E")


class FrameSplitter(Generic[F]):
    """Splits a byte stream into checked frames; keeps partial frames, resynchronises on garbage.

    `dropped` counts frames whose header or check was wrong; `skipped` counts bytes thrown away
    while looking for the next start byte.
    """

    head: ClassVar[int]
    """The byte every frame starts with."""
    header_size: ClassVar[int]
    """How many bytes (the start byte included) `_frame_end` reads to know the frame's length."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0
        self.skipped = 0

    def _frame_end(self, buf: bytearray, pos: int) -> int:
        """Where the frame starting at `pos` ends (exclusive), from its header; -1 when the header
        cannot be a frame's. Only `header_size` bytes from `pos` are known to be there."""
        raise NotImplementedError

    def _frame(self, buf: bytearray, pos: int, stop: int) -> F | None:
        """The frame `buf[pos:stop]`, or None when its check fails."""
        raise NotImplementedError

    def feed(self, data: bytes) -> list[F]:
        buf = self._buf
        buf += data
        frames: list[F] = []
        head, need = self.head, self.header_size
        frame_end, frame = self._frame_end, self._frame
        dropped = skipped = 0
        pos = 0
        end = len(buf)
        while True:
            start = buf.find(head, pos)
            if start < 0:
                skipped += end - pos
                pos = end
                break
            skipped += start - pos
            pos = start
            if end - pos < need:
                break
            stop = frame_end(buf, pos)
            if stop < 0:
                dropped += 1
                pos += 1
                continue
            if stop > end:
                break
            found = frame(buf, pos, stop)
            if found is None:
                dropped += 1
                pos += 1  # resynchronise on the next start byte (it may be inside this frame)
                continue
            frames.append(found)
            pos = stop
        del buf[:pos]
        self.dropped += dropped
        self.skipped += skipped
        return frames


class EventDecoder(Generic[F, E]):
    """Frames to events; a frame whose content does not fit its command is counted in `malformed`.

    Never raises on garbage.
    """

    def __init__(self, frames: FrameSplitter[F], parse: Callable[[F], E | None]) -> None:
        self.frames = frames
        self.malformed = 0
        self._parse = parse

    @property
    def dropped(self) -> int:
        """Frames thrown away: a bad header or check, or content that does not fit the command."""
        return self.frames.dropped + self.malformed

    def feed(self, data: bytes) -> list[E]:
        events: list[E] = []
        parse = self._parse
        for frame in self.frames.feed(data):
            event = parse(frame)
            if event is None:
                self.malformed += 1
            else:
                events.append(event)
        return events
