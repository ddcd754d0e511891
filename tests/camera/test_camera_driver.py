"""The driver on real files, folders and a real HTTP MJPEG stream on 127.0.0.1."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from drivers.camera import CameraConfig, CameraDriver
from drivers.camera.capture import CapturedFrame
from drivers.camera.decode import Decoded, Locator
from drivers.camera.demo import DemoLabel, conveyor_frame
from drivers.camera.driver import DecodePipeline
from edge_agent.supervisor import Supervisor
from tests.camera.common import TESTDATA, Collector, Sample, require_testdata, samples
from tests.camera.mjpeg import MjpegCamera
from tests.helpers import wait_until

# Real photos that stand in for labels passing under a camera, one per symbology.
LABEL_PHOTOS = [
    ("code128-1", "2.webp"),
    ("datamatrix-1", "0123456789.png"),
    ("qrcode-1", "1.webp"),
    ("ean13-1", "10.webp"),
    ("pdf417-1", "01.png"),
    ("itf-1", "1.webp"),
    ("code39-1", "3.png"),
]
FORMATS = ["code128", "datamatrix", "qr", "ean13", "pdf417", "itf", "code39"]


def _photo(folder: str, name: str) -> Sample:
    require_testdata()
    (sample,) = [s for s in samples(folder.rsplit("-", 1)[0]) if s.folder == folder and s.path.name == name]
    return sample


def _on_canvas(image: npt.NDArray[Any], size: tuple[int, int] = (800, 600)) -> npt.NDArray[Any]:
    """The photo centred on a grey belt-coloured frame of one fixed size (a video has one size)."""
    width, height = size
    canvas = np.full((height, width, 3), 90, np.uint8)
    h, w = image.shape[:2]
    scale = min(1.0, (width - 40) / w, (height - 40) / h)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    y0, x0 = (height - h) // 2, (width - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = image
    return canvas


class Running:
    """A driver's run() in a thread of its own, as the supervisor runs it."""

    def __init__(self, config: CameraConfig) -> None:
        self.collector = Collector(config.id)
        self.driver = CameraDriver(config, self.collector.ctx)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.driver.run()
        except BaseException as err:
            self.error = err

    def stop(self) -> None:
        self.collector.ctx.stopping.set()
        self.thread.join(3)
        self.driver.close()
        assert not self.thread.is_alive(), "run() did not return within 3 s of stop"


@pytest.fixture
def unique_id(request: pytest.FixtureRequest) -> str:
    # Deduplication state outlives a driver instance per device id: one id per test.
    return "cam-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]


def test_video_file_from_real_photos_gives_one_reading_per_label(tmp_path: Path, unique_id: str) -> None:
    photos = [_photo(*p) for p in LABEL_PHOTOS]
    video = tmp_path / "conveyor.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (800, 600))
    assert writer.isOpened()
    belt = _on_canvas(np.full((10, 10, 3), 90, np.uint8))
    for sample in photos:
        frame = _on_canvas(sample.image())  # type: ignore[arg-type]
        for _ in range(6):  # the label stays under the camera for 6 frames
            writer.write(frame)
        for _ in range(3):
            writer.write(belt)
    writer.release()

    run = Running(CameraConfig(id=unique_id, source=str(video), formats=FORMATS, fps=60, dedupe_window="2s"))
    try:
        wait_until(lambda: run.driver.replay_finished or run.error, 30, what="the video decoded to its end")
    finally:
        run.stop()
    assert run.error is None
    readings = run.collector.readings
    assert sorted(r.value for r in readings) == sorted(p.text for p in photos if p.text)  # type: ignore[misc]
    assert len(readings) == len(photos)
    counters = run.collector.ctx.counters
    assert counters["frames"] == len(photos) * 9 and counters["frames_decoded"] == counters["frames"]
    assert counters["codes_seen"] > len(photos)  # seen in several frames each, reported once
    assert "frames_dropped" not in counters  # a file is a replay: no frame is dropped
    first = readings[0]
    assert first.kind == "barcode" and first.quality == "good" and first.extra is not None
    assert {"symbology", "symbology_identifier", "position"} <= set(first.extra)
    assert run.collector.states == ["connected"]


def test_folder_is_watched_in_name_order_and_a_missing_folder_is_a_device_error(tmp_path: Path, unique_id: str) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    first, second = _photo("code128-1", "2.webp"), _photo("qrcode-1", "1.webp")
    shutil.copy(first.path, folder / "0001.webp")
    run = Running(CameraConfig(id=unique_id, source=str(folder), formats=FORMATS, fps=20))
    try:
        wait_until(lambda: run.collector.values() == [first.text], 15, what="the first image read")
        shutil.copy(second.path, folder / "0002.webp")  # a new image dropped into the folder later
        wait_until(lambda: run.collector.values() == [first.text, second.text], 15, what="the new image read")
        images = [r.extra["image"] for r in run.collector.readings if r.extra]
        assert images == ["0001.webp", "0002.webp"]
        shutil.rmtree(folder)
        wait_until(lambda: run.error is not None, 10, what="a device error for the missing folder")
        assert "folder" in str(run.error) and str(folder) in str(run.error)
    finally:
        run.stop()


def test_roi_and_downscale_search_only_the_region_and_report_full_frame_positions(
    tmp_path: Path, unique_id: str
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    label = DemoLabel("(00)376104250021234569", "code128", gs1=True)
    frame = conveyor_frame(label)  # 1280x720, the label centred at (640, 360)
    outside = conveyor_frame(DemoLabel("4006381333931", "ean13"))
    cv2.imwrite(str(folder / "1.png"), frame)
    cv2.imwrite(str(folder / "2.png"), np.ascontiguousarray(np.roll(outside, 560, axis=1)))  # label at x≈1200
    config = CameraConfig(
        id=unique_id,
        source=str(folder),
        formats=["code128", "ean13"],
        fps=20,
        roi={"x": 200, "y": 100, "width": 900, "height": 560},
        downscale=0.75,
    )
    run = Running(config)
    try:
        wait_until(lambda: run.collector.ctx.counters.get("frames_decoded", 0) >= 2, 15, what="both frames decoded")
    finally:
        run.stop()
    assert run.collector.values() == ["00376104250021234569"]  # the EAN-13 is outside the region
    position = run.collector.readings[0].extra["position"]  # type: ignore[index]
    centre_x = sum(p[0] for p in position["corners"]) / 4
    centre_y = sum(p[1] for p in position["corners"]) / 4
    assert abs(centre_x - 640) < 20 and abs(centre_y - 345) < 30  # full-frame pixels, not ROI/scaled ones


def test_missing_sources_fail_with_a_clear_message_and_close_is_safe(tmp_path: Path) -> None:
    for source, words in [
        (str(tmp_path / "nope.mp4"), "no such file"),
        (str(tmp_path / "gone") + "/", "no such folder"),
        ("/dev/video97", "does not exist"),
    ]:
        collector = Collector("cam-missing")
        driver = CameraDriver(CameraConfig(id="cam-missing", source=source), collector.ctx)
        with pytest.raises(Exception, match=words):
            driver.run()
        driver.close()
        assert collector.states == []  # never connected


@pytest.fixture
def mjpeg_camera() -> Iterator[MjpegCamera]:
    label = _on_canvas(_photo("code128-1", "2.webp").image(), (640, 480))  # type: ignore[arg-type]
    # The label in every frame: a capture capped below the stream's rate samples frames at a phase
    # of its own, so a label in every third frame could be missed for seconds (aliasing).
    camera = MjpegCamera([label], fps=15).start()
    try:
        yield camera
    finally:
        camera.stop()


def test_http_stream_that_drops_is_reconnected_by_the_supervisor(mjpeg_camera: MjpegCamera, unique_id: str) -> None:
    readings: list[Any] = []
    states: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def emit(batch: list[Any]) -> None:
        with lock:
            readings.extend(batch)

    def on_state(device: str, state: str, error: str | None) -> None:
        with lock:
            states.append((state, error))

    config = CameraConfig(
        id=unique_id, source=mjpeg_camera.url, formats=FORMATS, fps=10, dedupe_window="300ms", read_timeout="2s"
    )
    sup = Supervisor([config], emit_many=emit, on_state=on_state, backoff_min=0.2, backoff_max=0.5)
    sup.start()
    try:
        wait_until(lambda: len(readings) >= 1, 20, what="a reading from the stream")
        clients = mjpeg_camera.clients
        mjpeg_camera.stop()  # the camera goes away: the stream drops
        wait_until(lambda: any(s == "error" for s, _ in states), 10, what="the device in error")
        error = next(e for s, e in states if s == "error")
        assert error is not None and mjpeg_camera.url in error
        # Away longer than the dedupe window (two failed reopens: ≥ 0.3 s of backoff), so the label
        # is a new sighting when the camera returns rather than the same one seen through a blip.
        wait_until(lambda: sup.runners[unique_id].restarts >= 2, 10, what="reopen attempts while away")
        before = len(readings)  # counted before the camera returns: its first frame may come with `connected`
        mjpeg_camera.start()  # back on the same port
        wait_until(lambda: states[-1][0] == "connected" and mjpeg_camera.clients > clients, 15, what="reconnected")
        wait_until(lambda: len(readings) > before, 15, what="readings again after the reconnect")
    finally:
        sup.stop(timeout=3)
    seq = [s for s, _ in states]
    first_error = seq.index("error")
    assert seq[0] == "connected" and "connected" in seq[first_error:]
    assert sup.runners[unique_id].restarts >= 1


def test_live_pipeline_drops_the_oldest_frames_and_counts_them() -> None:
    release = threading.Event()
    started = threading.Event()
    done: list[int] = []

    def decode(frame: CapturedFrame, locator: Locator) -> list[Decoded]:
        started.set()
        release.wait(10)
        return []

    pipeline = DecodePipeline(
        workers=2, decode=decode, on_decoded=lambda f, found: done.append(f.index), drop_when_busy=True
    )
    stop = threading.Event()
    image = np.zeros((4, 4), np.uint8)
    try:
        for i in range(1, 21):  # 20 frames while both workers are stuck on the first two
            assert pipeline.submit(CapturedFrame(image, i, 0.0, 0.0), stop)
            if i == 1:
                started.wait(5)
        release.set()
        wait_until(pipeline.idle, 10, what="the pipeline idle")
    finally:
        pipeline.stop()
    assert pipeline.dropped == 20 - len(done)
    assert pipeline.dropped >= 14  # only the frames in work and the newest queued survive
    assert 1 in done and max(done) == 20  # the first (in work) and the newest frame are decoded


def test_testdata_path_is_next_to_the_repository() -> None:
    assert TESTDATA.parent.parent.name == "shared" and require_testdata().is_dir()
