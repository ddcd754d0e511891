"""Camera decode throughput: frames per second sustained, CPU and RSS, per resolution and mode.

Modes: default (the fast settings), rotated (`rotated: true`), harder (`try_harder` + `try_invert`).

    python bench/camera_fps.py [--seconds 4] [--workers 2]

Frames go through the driver's own DecodePipeline (the decode threads of drivers/camera/driver.py)
as fast as it takes them (replay back-pressure, nothing dropped), so the figure is the decode
capacity: a live camera at or below it loses no frame. "CPU ms/frame" is the CPU time spent per
decoded frame; "fps if cores idle" is what `workers` cores would sustain at that cost, a figure
less disturbed than fps when other processes share the machine. "labels" frames are conveyor frames with a
parcel label from the demo set (GS1-128, EAN-13, GS1 DataMatrix, QR, a GS1-128 tilted 30°);
"empty" frames are the real no-barcode photos of ../shared/testdata/barcodes/falsepositives-1
scaled to the frame size (a synthetic belt when that folder is absent).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy.typing as npt

from drivers.camera.capture import CapturedFrame, list_images
from drivers.camera.decode import Decoded, DecodeOptions, Locator, decode_frame
from drivers.camera.demo import DEMO_LABELS, conveyor_frame
from drivers.camera.driver import DecodePipeline

FORMATS = ("code128", "ean13", "upca", "itf", "code39", "datamatrix", "qr", "pdf417")
FALSE_POSITIVES = Path(__file__).resolve().parents[1].parent / "shared/testdata/barcodes/falsepositives-1"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def frames(kind: str, size: tuple[int, int]) -> list[npt.NDArray[Any]]:
    if kind == "labels":
        return [conveyor_frame(label, size=size, seed=i) for i, label in enumerate(DEMO_LABELS)]
    if FALSE_POSITIVES.is_dir():
        out = []
        for path in list_images(FALSE_POSITIVES):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None and min(image.shape[:2]) >= 64:
                out.append(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))
        return out
    return [conveyor_frame(None, size=size, seed=i) for i in range(4)]


def run(images: list[npt.NDArray[Any]], options: DecodeOptions, seconds: float, workers: int) -> dict[str, float]:
    found = 0
    lock = threading.Lock()

    def on_decoded(frame: CapturedFrame, codes: list[Decoded]) -> None:
        nonlocal found
        with lock:
            found += len(codes)

    pipeline = DecodePipeline(
        workers=workers,
        decode=lambda f, loc: decode_frame(f.image, options, loc),
        on_decoded=on_decoded,
        drop_when_busy=False,
    )
    stop = threading.Event()
    # Warm up (thread start, first allocations) before measuring.
    for i in range(workers * 2):
        pipeline.submit(CapturedFrame(images[i % len(images)], i, 0.0, 0.0), stop)
    while not pipeline.idle():
        time.sleep(0.005)
    start_decoded, found = pipeline.decoded, 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        pipeline.submit(CapturedFrame(images[i % len(images)], i, time.time(), time.monotonic()), stop)
        i += 1
    while not pipeline.idle():
        time.sleep(0.001)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    decoded = pipeline.decoded - start_decoded
    pipeline.stop()
    return {
        "fps": decoded / wall,
        "cpu": 100 * cpu / wall,
        "cpu_ms": 1000 * cpu / max(decoded, 1),
        "codes_per_frame": found / max(decoded, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the decode threads are the parallelism; OpenCV's own pool would compete
    print(f"{os.cpu_count()} CPUs, {args.workers} decode workers, {args.seconds:.0f} s per case, formats {FORMATS}")
    print(
        f"{'size':>10} {'frames':>7} {'mode':>8} {'fps':>7} {'CPU %':>6} {'CPU ms/frame':>12} "
        f"{'fps if cores idle':>17} {'codes/frame':>11} {'RSS MB':>7}"
    )
    cores = min(args.workers, os.cpu_count() or 1)
    Locator()  # load OpenCV's detector once before the RSS baseline
    for size in ((1280, 720), (1920, 1080)):
        for kind in ("labels", "empty"):
            images = frames(kind, size)
            for mode in ("default", "rotated", "harder"):
                options = DecodeOptions(
                    formats=FORMATS, rotated=mode == "rotated", try_harder=mode == "harder", try_invert=mode == "harder"
                )
                r = run(images, options, args.seconds, args.workers)
                current, _ = rss_mb()
                print(
                    f"{size[0]}x{size[1]:<5} {kind:>7} {mode:>8} {r['fps']:7.1f} {r['cpu']:6.0f} {r['cpu_ms']:12.1f} "
                    f"{1000 * cores / r['cpu_ms']:17.0f} {r['codes_per_frame']:11.2f} {current:7.0f}",
                    flush=True,
                )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (frames held for the benchmark included)")


if __name__ == "__main__":
    main()
