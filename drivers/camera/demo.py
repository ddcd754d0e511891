"""Demo camera: parcels with labels rendered by zxing-cpp's writer, replayed from a folder.

`edge-agent demo` calls `start(workdir)`: it writes a few conveyor frames (1280x720 PNG: a parcel
with a GS1-128 SSCC label, a retail box with an EAN-13, a GS1 DataMatrix, a QR code, one label
tilted 30°, and an empty belt between them) into `workdir/frames` and returns the device entry
that replays that folder in a loop. Nothing runs in the background, so `stop()` has nothing to end.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

__all__ = ["DEMO_LABELS", "CameraDemo", "DemoLabel", "conveyor_frame", "render_code", "start"]

Image = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class DemoLabel:
    """What a demo frame shows: `content` in zxing-cpp's writer syntax (GS1 in HRI form)."""

    content: str
    symbology: str
    gs1: bool = False
    angle: float = 0.0
    caption: str = ""


DEMO_LABELS: tuple[DemoLabel, ...] = (
    DemoLabel("(00)376104250021234569", "code128", gs1=True, caption="SSCC 3 7610425 002123456 9"),
    DemoLabel("4006381333931", "ean13", caption="retail box"),
    DemoLabel("(01)09504000059101(10)ABC123(17)271231", "datamatrix", gs1=True, caption="GS1 DataMatrix"),
    DemoLabel("https://example.com/track/DEMO-0001", "qr", caption="carrier QR"),
    DemoLabel("(00)376104250021234576", "code128", gs1=True, angle=30.0, caption="tilted SSCC"),
)

_WRITER = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "itf": zxingcpp.BarcodeFormat.ITF,
    "code39": zxingcpp.BarcodeFormat.Code39,
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "upca": zxingcpp.BarcodeFormat.UPCA,
}


def render_code(label: DemoLabel, *, module: int = 3) -> Image:
    """The bare symbol (gray, black on white, with quiet zones) drawn by zxing-cpp's writer."""
    fmt = _WRITER[label.symbology]
    barcode = (
        zxingcpp.create_barcode(label.content, fmt, gs1=True)
        if label.gs1
        else zxingcpp.create_barcode(label.content, fmt)
    )
    image: Image = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=module), dtype=np.uint8)
    if label.symbology in ("code128", "ean13", "itf", "code39", "upca") and image.shape[0] < 90:
        image = cv2.resize(image, (image.shape[1], 90), interpolation=cv2.INTER_NEAREST)
    return image


def _paste_rotated(canvas: Image, patch: Image, center: tuple[int, int], angle: float) -> None:
    """Paste a gray patch onto a BGR canvas, rotated by `angle` degrees (counter-clockwise)."""
    h, w = patch.shape[:2]
    side = int(math.hypot(w, h)) + 4
    square: Image = np.full((side, side), 255, np.uint8)
    y0, x0 = (side - h) // 2, (side - w) // 2
    square[y0 : y0 + h, x0 : x0 + w] = patch
    mask: Image = np.zeros((side, side), np.uint8)
    mask[y0 : y0 + h, x0 : x0 + w] = 255
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    square = cv2.warpAffine(square, turn, (side, side), flags=cv2.INTER_LINEAR, borderValue=255)
    mask = cv2.warpAffine(mask, turn, (side, side), flags=cv2.INTER_NEAREST, borderValue=0)
    cx, cy = center
    top, left = cy - side // 2, cx - side // 2
    # Clip to the canvas: a label larger than the frame is cut, as a camera would cut it.
    y_from, x_from = max(0, -top), max(0, -left)
    y_to, x_to = min(side, canvas.shape[0] - top), min(side, canvas.shape[1] - left)
    region = canvas[top + y_from : top + y_to, left + x_from : left + x_to]
    keep = mask[y_from:y_to, x_from:x_to] > 0
    region[keep] = cv2.cvtColor(square[y_from:y_to, x_from:x_to], cv2.COLOR_GRAY2BGR)[keep]


def conveyor_frame(
    label: DemoLabel | None, *, size: tuple[int, int] = (1280, 720), seed: int = 0, module: int = 3
) -> Image:
    """A BGR frame of a belt, with a parcel carrying `label` (or an empty belt for None)."""
    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 6, (height, width, 1))
    frame = np.clip(np.full((height, width, 3), (70, 72, 75), np.float64) + noise, 0, 255).astype(np.uint8)
    for x in range(0, width, 160):  # belt slats
        cv2.line(frame, (x, 0), (x, height - 1), (55, 55, 58), 3)
    if label is None:
        return frame
    cv2.rectangle(frame, (width // 6, height // 8), (width * 5 // 6, height * 7 // 8), (90, 140, 180), -1)
    code = render_code(label, module=module)
    pad = 30
    label_img = np.full((code.shape[0] + 2 * pad + 40, code.shape[1] + 2 * pad), 255, np.uint8)
    label_img[pad : pad + code.shape[0], pad : pad + code.shape[1]] = code
    cv2.putText(
        label_img, label.caption, (pad, label_img.shape[0] - 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1, cv2.LINE_AA
    )
    _paste_rotated(frame, label_img, (width // 2, height // 2), label.angle)
    return frame


@dataclass
class CameraDemo:
    """What `edge-agent demo` needs: the device entries, and `stop()`."""

    yaml: str
    folder: Path

    def stop(self) -> None:
        """Nothing runs in the background: the agent's camera driver reads the folder itself."""


def write_frames(folder: Path, labels: tuple[DemoLabel, ...] = DEMO_LABELS) -> list[Path]:
    """One frame per label, each followed by an empty belt, as PNGs in name order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, label in enumerate(labels):
        for j, shown in enumerate((label, None)):
            path = folder / f"frame-{i:02d}-{j}.png"
            if not cv2.imwrite(str(path), conveyor_frame(shown, seed=i)):
                raise OSError(f"cannot write {path}")
            paths.append(path)
    return paths


def start(workdir: Path) -> CameraDemo:
    folder = workdir / "frames"
    write_frames(folder)
    yaml = (
        "  - id: demo-camera\n"
        "    driver: camera\n"
        f"    source: {json.dumps(str(folder) + os.sep)}\n"
        "    formats: [code128, ean13, datamatrix, qr]\n"
        "    rotated: true\n"
        "    fps: 4\n"
        "    loop: true\n"
        "    dedupe_window: 1s\n"
    )
    return CameraDemo(yaml=yaml, folder=folder)
