"""`edge-agent probe camera SOURCE`: what the decoder finds in an image, video, folder or camera.

For technicians aiming a camera: it prints each code found (symbology, text, GS1 fields, where in
the frame) and can save the last frame with the codes outlined (`--save annotated.png`). Exit
status: 0 when something was read, 1 when nothing was, 2 when the source cannot be read.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import cv2
import numpy as np
import numpy.typing as npt

from drivers.camera.capture import Capture, CapturedFrame
from drivers.camera.config import DEFAULT_FORMATS, Symbology
from drivers.camera.decode import Decoded, DecodeOptions, Locator, decode_frame
from drivers.camera.driver import barcode_fields
from edge_agent import DeviceError

__all__ = ["annotate", "configure"]


def annotate(image: npt.NDArray[Any], frame: CapturedFrame, found: list[Decoded]) -> npt.NDArray[Any]:
    """A copy of the full frame with each code outlined and labelled."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if frame.offset != (0, 0) or frame.scale != 1.0:
        x, y = frame.offset
        h, w = frame.image.shape[:2]
        cv2.rectangle(out, (x, y), (x + round(w / frame.scale), y + round(h / frame.scale)), (255, 160, 0), 2)
    for item in found:
        pts = np.array([frame.to_full_frame(px, py) for px, py in item.corners], dtype=np.int32)
        cv2.polylines(out, [pts], True, (0, 220, 0), 3)
        caption = f"{item.symbology}: {item.text[:40]}"
        x, y = int(pts[:, 0].min()), int(pts[:, 1].min())
        cv2.putText(out, caption, (x, max(18, y - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2, cv2.LINE_AA)
    return out


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Decode barcodes in an image, video, folder, stream or camera and show what is found."""
    parser.add_argument("source", help="image file, video file, folder of images, rtsp/http URL, /dev/videoN or N")
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=list(get_args(Symbology)),
        default=list(DEFAULT_FORMATS),
        metavar="FORMAT",
        help=f"symbologies to read (default: {' '.join(DEFAULT_FORMATS)})",
    )
    parser.add_argument("--rotated", action="store_true", help="also find linear codes at any angle")
    parser.add_argument("--try-harder", action="store_true", help="also try 90° turns, downscaling, other binarizer")
    parser.add_argument("--try-invert", action="store_true", help="also read light-on-dark codes")
    parser.add_argument("--frames", type=int, default=30, help="videos, folders, cameras: frames to read (30)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second to read at most (30)")
    parser.add_argument("--save", type=Path, help="write the last frame with codes outlined to this image file")
    parser.add_argument("--json", action="store_true", help="one JSON object per code instead of text")
    return _run


def _run(args: argparse.Namespace) -> int:
    options = DecodeOptions(
        formats=tuple(args.formats), rotated=args.rotated, try_invert=args.try_invert, try_harder=args.try_harder
    )
    source: str | int = int(args.source) if str(args.source).isdigit() else args.source
    path = Path(str(source))
    if path.is_file() and path.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"{path}: not a readable image")
            return 2
        frames = [CapturedFrame(np.asarray(image), 1, time.time(), time.monotonic(), name=path.name)]
        return _report(frames, [image], options, args)
    stop = threading.Event()
    capture = Capture(source, fps=args.fps, stop=stop)
    try:
        capture.open()
        captured: list[CapturedFrame] = []
        for frame in capture.frames():
            captured.append(frame)
            if len(captured) >= args.frames:
                break
    except DeviceError as err:
        print(f"cannot read: {err}")
        return 2
    finally:
        capture.close()
    if not captured:
        print(f"{capture.name}: no frames")
        return 2
    return _report(captured, [f.image for f in captured], options, args)


def _report(
    frames: list[CapturedFrame], images: list[npt.NDArray[Any]], options: DecodeOptions, args: argparse.Namespace
) -> int:
    locator = Locator()
    seen: set[tuple[str, str]] = set()
    total_ms = 0.0
    last: tuple[npt.NDArray[Any], CapturedFrame, list[Decoded]] | None = None
    for frame, image in zip(frames, images, strict=True):
        started = time.perf_counter()
        found = decode_frame(frame.image, options, locator)
        total_ms += (time.perf_counter() - started) * 1000
        if found or last is None:
            last = (image, frame, found)
        for item in found:
            fields, error = barcode_fields(item, frame)
            if args.json:
                print(json.dumps({"frame": frame.index, "value": item.text, **fields}, ensure_ascii=False))
            elif item.key not in seen:
                where = fields["position"]
                print(
                    f"frame {frame.index}: {item.symbology} {item.symbology_identifier} {item.text!r} "
                    f"at x={where['x']} y={where['y']} {where['width']}x{where['height']} angle={where['angle']}"
                )
                if "gs1" in fields and fields["gs1"] is not None:
                    print(f"    GS1 {fields['gs1']['hri']}: {json.dumps(fields['gs1']['ais'])}")
                if error:
                    print(f"    GS1 content does not parse: {error}")
            seen.add(item.key)
    print(
        f"{len(frames)} frame(s), {len(seen)} distinct code(s), {total_ms / len(frames):.1f} ms per frame "
        f"({frames[0].image.shape[1]}x{frames[0].image.shape[0]}, {'rotated' if options.rotated else 'default'} mode)"
    )
    if args.save is not None and last is not None:
        image, frame, found = last
        if not cv2.imwrite(str(args.save), annotate(image, frame, found)):
            print(f"cannot write {args.save}")
            return 2
        print(f"annotated frame written to {args.save}")
    return 0 if seen else 1
