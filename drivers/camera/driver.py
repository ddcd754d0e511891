"""The camera driver: a capture thread, decode workers, deduplication, one reading per label.

Threads: `run()` (the device thread) opens the source, starts one capture thread and
`workers` decode threads, then only watches them. The capture thread hands frames to a small
queue; on a live source a frame that finds the queue full replaces the oldest waiting one (the
replaced frame is counted as `frames_dropped`), so decoding never falls behind the camera. Files
and folders are replays: the capture thread waits for a free worker instead, so no frame is lost.
zxing-cpp and OpenCV release the GIL, so with a backlog both cores decode.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2

from drivers.camera.capture import Capture, CapturedFrame
from drivers.camera.config import CameraConfig
from drivers.camera.decode import Decoded, DecodeOptions, Locator, decode_frame
from drivers.camera.dedupe import Deduper
from drivers.camera.gs1 import parse_gs1
from edge_agent import DeviceError, Driver, DriverContext, Quality, Reading

__all__ = ["CameraDriver", "DecodePipeline", "barcode_fields"]


class DecodePipeline:
    """`workers` threads decoding frames from a bounded queue; `submit()` from one capture thread."""

    def __init__(
        self,
        *,
        workers: int,
        decode: Callable[[CapturedFrame, Locator], list[Decoded]],
        on_decoded: Callable[[CapturedFrame, list[Decoded]], None],
        drop_when_busy: bool,
        on_drop: Callable[[int], None] = lambda n: None,
        capacity: int | None = None,
        name: str = "camera",
    ) -> None:
        self.capacity = capacity or workers
        self.drop_when_busy = drop_when_busy
        self.decoded = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._decode = decode
        self._on_decoded = on_decoded
        self._on_drop = on_drop
        self._queue: collections.deque[CapturedFrame] = collections.deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-decode-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, frame: CapturedFrame, stop: threading.Event) -> bool:
        """Queue a frame; False when the pipeline is stopping. Live: drop the oldest; replay: wait."""
        with self._cond:
            while len(self._queue) >= self.capacity and not self._stopped and not stop.is_set():
                if self.drop_when_busy:
                    self._queue.popleft()
                    self.dropped += 1
                    self._on_drop(1)
                    break
                self._cond.wait(0.05)
            if self._stopped or stop.is_set():
                return False
            self._queue.append(frame)
            self._cond.notify()
            return True

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and self._busy == 0

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        locator = Locator()
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                frame = self._queue.popleft()
                self._busy += 1
                self._cond.notify_all()  # room in the queue for a waiting replay
            try:
                found = self._decode(frame, locator)
                self._on_decoded(frame, found)
            except BaseException as err:  # surfaced to run(), which raises it as the device's failure
                with self._cond:
                    self.error = err
                    self._stopped = True
                    self._cond.notify_all()
                return
            finally:
                with self._cond:
                    self._busy -= 1
                    self.decoded += 1
                    self._cond.notify_all()


def barcode_fields(item: Decoded, frame: CapturedFrame) -> tuple[dict[str, Any], str | None]:
    """A reading's extra fields for one decoded code, and a GS1 parse error when there is one."""
    corners = [frame.to_full_frame(x, y) for x, y in item.corners]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    fields: dict[str, Any] = {
        "symbology": item.symbology,
        "symbology_identifier": item.symbology_identifier,
        "position": {
            "x": min(xs),
            "y": min(ys),
            "width": max(xs) - min(xs),
            "height": max(ys) - min(ys),
            "corners": [list(p) for p in corners],
            "angle": item.orientation,
        },
    }
    error = None
    if item.is_gs1:
        parsed = parse_gs1(item.text, item.symbology_identifier)
        fields["gs1"] = parsed.data
        if parsed.error is not None:
            fields["gs1_error"] = parsed.error
            error = parsed.error
    if frame.name is not None:
        fields["image"] = frame.name
    return fields, error


class CameraDriver(Driver):
    """Barcodes from a camera, stream, video file or folder of images; one reading per label."""

    config_model = CameraConfig
    config: CameraConfig

    def __init__(self, config: CameraConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.options = DecodeOptions(
            formats=tuple(config.formats),
            rotated=config.rotated,
            try_invert=config.try_invert,
            try_harder=config.try_harder,
        )
        # Deduplication outlives a driver instance (ctx.store does): a stream that reconnects must
        # not report the label under the camera a second time.
        self.deduper: Deduper = ctx.store.setdefault("deduper", Deduper(config.dedupe_window))
        self._lock = threading.Lock()
        self._capture: Capture | None = None
        self._pipeline: DecodePipeline | None = None
        self._capture_error: BaseException | None = None
        self._capture_thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- callbacks from the threads ------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.ctx.count(name, n)

    def _decode(self, frame: CapturedFrame, locator: Locator) -> list[Decoded]:
        return decode_frame(frame.image, self.options, locator)

    def _on_decoded(self, frame: CapturedFrame, found: list[Decoded]) -> None:
        readings: list[Reading] = []
        for item in found:
            if not self.deduper.seen(item.key, frame.mono):
                continue
            fields, gs1_error = barcode_fields(item, frame)
            quality: Quality = "uncertain" if gs1_error else "good"
            readings.append(self.ctx.reading("barcode", item.text, ts=frame.ts, quality=quality, **fields))
        with self._lock:
            self.ctx.count("frames_decoded")
            if found:
                self.ctx.count("codes_seen", len(found))
            if readings:
                self.ctx.emit_many(readings)

    def _capture_loop(self, capture: Capture, pipeline: DecodePipeline) -> None:
        try:
            for frame in capture.frames():
                self._count("frames")
                if not pipeline.submit(frame, self._stop):
                    break
            if capture.ended:
                self.ctx.logger.info("%s: end of %s, %d frames", self.ctx.device_id, capture.name, capture.captured)
        except BaseException as err:  # handed to run(), which raises it in the device thread
            self._capture_error = err
        finally:
            capture.close()

    @property
    def replay_finished(self) -> bool:
        """A file (without `loop`) was read to its end and every frame of it is decoded."""
        capture, pipeline = self._capture, self._pipeline
        thread = self._capture_thread
        return (
            capture is not None
            and capture.ended
            and pipeline is not None
            and thread is not None
            and not thread.is_alive()
            and pipeline.idle()
        )

    # -- driver API ---------------------------------------------------------------------------
    def run(self) -> None:
        cfg, ctx = self.config, self.ctx
        capture = Capture(
            cfg.source,
            fps=cfg.fps,
            stop=self._stop,
            roi=cfg.roi,
            downscale=cfg.downscale,
            loop=cfg.loop,
            frame_size=cfg.frame_size,
            open_timeout=cfg.open_timeout,
            read_timeout=cfg.read_timeout,
        )
        self._capture = capture
        # The decode threads are the parallelism; OpenCV's own thread pool inside each call would
        # only compete with them for the same cores (process-wide, and right for every camera).
        cv2.setNumThreads(1)
        capture.open()
        pipeline = DecodePipeline(
            workers=cfg.workers,
            decode=self._decode,
            on_decoded=self._on_decoded,
            drop_when_busy=capture.live,
            on_drop=lambda n: self._count("frames_dropped", n),
            name=f"camera-{ctx.device_id}",
        )
        self._pipeline = pipeline
        ctx.connected()
        thread = threading.Thread(
            target=self._capture_loop, args=(capture, pipeline), name=f"camera-{ctx.device_id}-capture", daemon=True
        )
        self._capture_thread = thread
        thread.start()
        last_expire = time.monotonic()
        while not ctx.wait(0.1):
            if self._capture_error is not None:
                err = self._capture_error
                raise err if isinstance(err, DeviceError) else DeviceError(f"{capture.name}: {err}") from err
            if pipeline.error is not None:
                raise DeviceError(f"{capture.name}: decoding failed: {pipeline.error}") from pipeline.error
            if time.monotonic() - last_expire > 10.0:
                self.deduper.expire()
                last_expire = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        thread, self._capture_thread = self._capture_thread, None
        if thread is not None:
            thread.join(1.0)  # a read blocked in OpenCV ends with its timeout; the thread then closes
        if self._pipeline is not None:
            self._pipeline.stop(1.0)
        if self._capture is not None and thread is None:
            self._capture.close()  # opened, but the capture thread never started
