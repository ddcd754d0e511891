"""The whole camera driver on a live stream: an MJPEG camera on 127.0.0.1 at 30 fps.

    python bench/camera_live.py [--seconds 10] [--fps 30]

A local HTTP server (tests/camera/mjpeg.py) serves conveyor frames (labels from the demo set, a
third of them tilted, and empty belt between parcels) at `--fps`; the driver (capture thread,
JPEG decoding by OpenCV, decode workers, dedupe, readings) runs with `fps` equal to the stream's.
Reported: frames captured and decoded per second, frames dropped, readings, CPU and RSS.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from drivers.camera import CameraConfig, CameraDriver
from drivers.camera.demo import DEMO_LABELS, conveyor_frame
from edge_agent import DriverContext, Reading
from tests.camera.mjpeg import MjpegCamera


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_case(size: tuple[int, int], rotated: bool, seconds: float, fps: float, n: int) -> None:
    frames = []
    for i, label in enumerate(DEMO_LABELS):
        frames += [conveyor_frame(label, size=size, seed=i)] * 3 + [conveyor_frame(None, size=size, seed=i)] * 3
    camera = MjpegCamera(frames, fps=fps).start()
    readings: list[Reading] = []
    lock = threading.Lock()

    def emit(batch: list[Reading]) -> None:
        with lock:
            readings.extend(batch)

    ctx = DriverContext(f"bench-live-{n}", emit_many=emit)
    config = CameraConfig(id=ctx.device_id, source=camera.url, fps=fps, rotated=rotated, dedupe_window="100ms")
    driver = CameraDriver(config, ctx)
    thread = threading.Thread(target=driver.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # connect and warm up before measuring
    c0 = dict(ctx.counters)
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c1 = dict(ctx.counters)
    ctx.stopping.set()
    thread.join(3)
    driver.close()
    camera.stop()

    def delta(name: str) -> int:
        return c1.get(name, 0) - c0.get(name, 0)

    print(
        f"{size[0]}x{size[1]:<5} {'rotated' if rotated else 'default':>8} {delta('frames') / wall:9.1f} "
        f"{delta('frames_decoded') / wall:9.1f} {delta('frames_dropped'):8d} {delta('readings'):9d} "
        f"{100 * cpu / wall:6.0f} {rss_mb():7.0f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    print(f"stream {args.fps:.0f} fps MJPEG on 127.0.0.1, {args.seconds:.0f} s per case (server in this process)")
    head = ("size", "mode", "captured", "decoded", "dropped", "readings", "CPU %", "RSS MB")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (10, 8, 9, 9, 8, 9, 6, 7), strict=True)))
    n = 0
    for size in ((1280, 720), (1920, 1080)):
        for rotated in (False, True):
            n += 1
            run_case(size, rotated, args.seconds, args.fps, n)


if __name__ == "__main__":
    main()
