"""Frames from OpenCV: a V4L2 camera, a video file, an RTSP/HTTP stream or a folder of images.

`Capture.frames()` yields frames at no more than `fps`, cut to the region of interest and
downscaled, each stamped with its capture time. Live sources (cameras and streams) are read
continuously so that the frame handed on is always the newest one (grabbed frames that the fps
cap does not need are skipped without being decoded into pixels); files and folders are replayed
at `fps`. Every failure is a DeviceError naming the source: the supervisor then reconnects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from drivers.camera.config import Region, SourceKind, source_kind
from edge_agent import DeviceError

__all__ = ["IMAGE_SUFFIXES", "Capture", "CapturedFrame", "list_images"]

Frame = npt.NDArray[Any]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"})

log = logging.getLogger("drivers.camera.capture")


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """A frame ready to decode, and how to map its pixels back to the camera's full frame."""

    image: Frame
    index: int
    ts: float  # wall clock at capture (time.time())
    mono: float  # monotonic clock at capture, for deduplication
    offset: tuple[int, int] = (0, 0)
    scale: float = 1.0
    name: str | None = None  # file name, for folders

    def to_full_frame(self, x: float, y: float) -> tuple[int, int]:
        return round(x / self.scale + self.offset[0]), round(y / self.scale + self.offset[1])


def list_images(folder: Path) -> list[Path]:
    """Image files of `folder` in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class Capture:
    """One source, opened by `open()`, read by iterating `frames()` in one thread, released by `close()`."""

    def __init__(
        self,
        source: str | int,
        *,
        fps: float,
        stop: threading.Event,
        roi: Region | None = None,
        downscale: float = 1.0,
        loop: bool = False,
        frame_size: tuple[int, int] | None = None,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        self.source = source
        self.kind: SourceKind = source_kind(source)
        self.fps = fps
        self.stop = stop
        self.roi = roi
        self.downscale = downscale
        self.loop = loop
        self.frame_size = frame_size
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.captured = 0
        self.ended = False  # a file (without loop) was read to its end
        self._cap: cv2.VideoCapture | None = None

    @property
    def live(self) -> bool:
        """Cameras and streams: frames that cannot be decoded in time are dropped, not queued."""
        return self.kind in ("device", "url")

    @property
    def name(self) -> str:
        if isinstance(self.source, int):
            return f"camera /dev/video{self.source}"
        return {"device": "camera", "url": "stream", "folder": "folder", "file": "video file"}[self.kind] + (
            f" {self.source}"
        )

    # -- open / close -------------------------------------------------------------------------
    def open(self) -> None:
        if self.kind == "folder":
            if not Path(str(self.source)).is_dir():
                raise DeviceError(f"{self.name}: no such folder")
            return
        if self.kind == "file" and not os.path.isfile(str(self.source)):
            raise DeviceError(f"{self.name}: no such file")
        if self.kind == "device" and isinstance(self.source, str) and not os.path.exists(self.source):
            raise DeviceError(f"{self.name} does not exist (unplugged, or wrong path?)")
        params: list[int] = []
        api = cv2.CAP_ANY
        if self.kind == "url":
            api = cv2.CAP_FFMPEG
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout * 1000),
            ]
        elif self.kind == "device":
            api = cv2.CAP_V4L2
            if self.frame_size is not None:
                params = [cv2.CAP_PROP_FRAME_WIDTH, self.frame_size[0], cv2.CAP_PROP_FRAME_HEIGHT, self.frame_size[1]]
        cap = cv2.VideoCapture(self.source, api, params) if params else cv2.VideoCapture(self.source, api)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(f"{self.name}: cannot open (OpenCV could not read it)")
        if self.kind == "device":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog in the driver
            cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout * 1000)  # where the backend supports it
        self._cap = cap

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    # -- frames -------------------------------------------------------------------------------
    def frames(self) -> Iterator[CapturedFrame]:
        """Frames until `stop` is set (or a file without `loop` ends); raises DeviceError on failure."""
        if self.kind == "folder":
            yield from self._folder_frames()
        elif self.live:
            yield from self._live_frames()
        else:
            yield from self._file_frames()

    def _prepare(self, image: Frame, name: str | None = None) -> CapturedFrame:
        ts, mono = time.time(), time.monotonic()
        offset = (0, 0)
        if self.roi is not None:
            r = self.roi
            height, width = image.shape[:2]
            if r.x >= width or r.y >= height:
                raise DeviceError(f"{self.name}: roi starts outside the {width}x{height} frame")
            image = image[r.y : min(r.y + r.height, height), r.x : min(r.x + r.width, width)]
            offset = (r.x, r.y)
        if self.downscale < 1.0:
            image = cv2.resize(image, None, fx=self.downscale, fy=self.downscale, interpolation=cv2.INTER_AREA)
        self.captured += 1
        return CapturedFrame(image, self.captured, ts, mono, offset, self.downscale, name)

    def _live_frames(self) -> Iterator[CapturedFrame]:
        cap = self._require()
        interval = 1.0 / self.fps
        due = time.monotonic()
        while not self.stop.is_set():
            if not cap.grab():
                raise DeviceError(f"{self.name}: stream dropped (no frame)")
            now = time.monotonic()
            if now < due:
                continue  # the fps cap: grabbed (kept current), not decoded
            due = max(due + interval, now)
            ok, image = cap.retrieve()
            if not ok or image is None:
                raise DeviceError(f"{self.name}: frame could not be decoded")
            yield self._prepare(np.asarray(image, dtype=np.uint8))

    def _file_frames(self) -> Iterator[CapturedFrame]:
        cap = self._require()
        interval = 1.0 / self.fps
        due = time.monotonic()
        while not self.stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                if self.captured == 0:
                    raise DeviceError(f"{self.name}: no frame could be read")
                if not self.loop:
                    self.ended = True
                    return
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            due = max(due + interval, time.monotonic() - interval)
            yield self._prepare(np.asarray(image, dtype=np.uint8))

    def _folder_frames(self) -> Iterator[CapturedFrame]:
        folder = Path(str(self.source))
        interval = 1.0 / self.fps
        done: set[str] = set()
        due = time.monotonic()
        yielded = False  # in this pass over the folder
        while not self.stop.is_set():
            try:
                pending = [p for p in list_images(folder) if p.name not in done]
            except OSError as err:
                raise DeviceError(f"{self.name}: cannot list ({err.strerror or err})") from err
            if not pending:
                if self.loop and yielded:
                    done.clear()
                    yielded = False
                    continue
                if self.stop.wait(max(interval, 0.2)):  # a watched folder: new images appear later
                    return
                continue
            for path in pending:
                done.add(path.name)
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    if path.exists():
                        log.warning("%s: %s is not a readable image; skipped", self.name, path.name)
                    continue
                if self.stop.wait(max(0.0, due - time.monotonic())):
                    return
                due = max(due + interval, time.monotonic() - interval)
                yield self._prepare(np.asarray(image, dtype=np.uint8), path.name)
                yielded = True
                if self.stop.is_set():
                    return

    def _require(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise DeviceError(f"{self.name}: not open")
        return self._cap
