"""Barcodes from frames: zxing-cpp decoding, and a rotated mode that uses OpenCV as a locator.

Pure functions over numpy frames (no capture, no clock, no threads). zxing-cpp reads every
configured symbology on the whole frame; it does not find linear codes tilted by about 45°, so
in rotated mode OpenCV's `BarcodeDetector` (used only to locate, never to decode) proposes
rotated boxes, each box is cut out upright with a perspective warp, and zxing-cpp decodes the
crop. Both libraries release the GIL, so decoding scales over threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

__all__ = [
    "LINEAR",
    "SYMBOLOGIES",
    "DecodeOptions",
    "Decoded",
    "Locator",
    "decode_frame",
    "to_gray",
]

Frame = npt.NDArray[Any]
Point = tuple[int, int]

_F = zxingcpp.BarcodeFormat
# Config names → zxing-cpp formats. Order matters for naming results: specific names first.
SYMBOLOGIES: dict[str, Any] = {
    "code128": _F.Code128,
    "upca": _F.UPCA,
    "upce": _F.UPCE,
    "ean13": _F.EAN13,
    "ean8": _F.EAN8,
    "itf": _F.ITF,
    "code39": _F.Code39,
    "code93": _F.Code93,
    "codabar": _F.Codabar,
    "databar_expanded": _F.DataBarExpanded,
    "databar": _F.DataBar,
    "datamatrix": _F.DataMatrix,
    "microqr": _F.MicroQRCode,
    "qr": _F.QRCode,
    "pdf417": _F.PDF417,
    "aztec": _F.Aztec,
    "maxicode": _F.MaxiCode,
}
LINEAR = frozenset(
    {"code128", "upca", "upce", "ean13", "ean8", "itf", "code39", "code93", "codabar", "databar", "databar_expanded"}
)

_NAME_BY_FORMAT: dict[Any, str] = {}
for _name, _fmt in SYMBOLOGIES.items():
    for _sub in zxingcpp.barcode_formats_list(_fmt):
        _NAME_BY_FORMAT.setdefault(_sub, _name)


def symbology_name(fmt: Any) -> str:
    """Our name for a zxing-cpp result format (`Code 39 Extended` → `code39`)."""
    return _NAME_BY_FORMAT.get(fmt) or str(fmt).lower().replace(" ", "").replace("-", "")


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What to look for, and how hard: built once from the device config."""

    formats: tuple[str, ...]
    rotated: bool = False
    try_invert: bool = False
    try_harder: bool = False

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in SYMBOLOGIES]
        if unknown or not self.formats:
            raise ValueError(f"unknown or no symbologies: {unknown or self.formats}")

    @property
    def zxing_formats(self) -> zxingcpp.BarcodeFormats:
        return zxingcpp.BarcodeFormats([SYMBOLOGIES[f] for f in self.formats])

    @property
    def linear_formats(self) -> zxingcpp.BarcodeFormats | None:
        linear = [SYMBOLOGIES[f] for f in self.formats if f in LINEAR]
        return zxingcpp.BarcodeFormats(linear) if linear else None


@dataclass(frozen=True, slots=True)
class Decoded:
    """One barcode found in a frame; `corners` are frame pixels, top-left first, clockwise."""

    text: str
    raw: bytes
    symbology: str
    symbology_identifier: str
    is_gs1: bool
    corners: tuple[Point, Point, Point, Point]
    orientation: int

    @property
    def key(self) -> tuple[str, str]:
        return self.symbology, self.text

    def bbox(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) around the corners."""
        xs = [p[0] for p in self.corners]
        ys = [p[1] for p in self.corners]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


class Locator:
    """OpenCV's barcode detector as a locator of (possibly rotated) linear codes; one per thread."""

    def __init__(self, *, downsampling_threshold: float = 512.0) -> None:
        self._detector = cv2.barcode.BarcodeDetector()
        self._detector.setDownsamplingThreshold(downsampling_threshold)

    def locate(self, gray: Frame) -> list[npt.NDArray[np.float32]]:
        """Quadrilaterals (4x2 float arrays, frame pixels) that look like linear barcodes."""
        ok, points = self._detector.detectMulti(gray)
        if not ok or points is None:
            return []
        return [np.asarray(q, dtype=np.float32).reshape(4, 2) for q in points]


def to_gray(frame: Frame) -> Frame:
    """A single-channel view of a BGR, BGRA or gray frame."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _read(image: Frame, formats: zxingcpp.BarcodeFormats, options: DecodeOptions, *, crop: bool = False) -> list[Any]:
    results = zxingcpp.read_barcodes(
        image,
        formats=formats,
        try_rotate=options.try_harder or crop,
        try_downscale=options.try_harder or not crop,
        try_invert=options.try_invert,
        text_mode=zxingcpp.TextMode.Plain,
    )
    if not results and crop:
        results = _read_crop_again(image, formats, options)
    if not results and options.try_harder:
        # Unevenly lit codes that the local-average binarizer breaks up often survive a global one.
        results = zxingcpp.read_barcodes(
            image,
            formats=formats,
            try_invert=options.try_invert,
            text_mode=zxingcpp.TextMode.Plain,
            binarizer=zxingcpp.Binarizer.GlobalHistogram,
        )
    return list(results)


def _read_crop_again(crop: Frame, formats: zxingcpp.BarcodeFormats, options: DecodeOptions) -> list[Any]:
    """Second chances for a warped crop, whose bar edges the warp has softened.

    The crop is small and holds one code, so these passes are cheap: a plain global threshold,
    then the default binarizer on an unsharp-masked copy (each read about a third of the located
    codes the first pass missed, on zxing-cpp's photo samples turned by 45°).
    """
    common: dict[str, Any] = {
        "formats": formats,
        "try_rotate": True,
        "try_downscale": False,
        "try_invert": options.try_invert,
        "text_mode": zxingcpp.TextMode.Plain,
    }
    results = zxingcpp.read_barcodes(crop, binarizer=zxingcpp.Binarizer.FixedThreshold, **common)
    if not results:
        sharpened = cv2.addWeighted(crop, 1.8, cv2.GaussianBlur(crop, (0, 0), 2.0), -0.8, 0)
        results = zxingcpp.read_barcodes(sharpened, **common)
    return list(results)


def _corners(position: Any) -> tuple[Point, Point, Point, Point]:
    return (
        (int(position.top_left.x), int(position.top_left.y)),
        (int(position.top_right.x), int(position.top_right.y)),
        (int(position.bottom_right.x), int(position.bottom_right.y)),
        (int(position.bottom_left.x), int(position.bottom_left.y)),
    )


def _decoded(result: Any, corners: tuple[Point, Point, Point, Point], orientation: int) -> Decoded:
    return Decoded(
        text=result.text,
        raw=bytes(result.bytes),
        symbology=symbology_name(result.format),
        symbology_identifier=result.symbology_identifier,
        is_gs1=result.content_type == zxingcpp.ContentType.GS1,
        corners=corners,
        orientation=orientation,
    )


def _upright_crop(gray: Frame, quad: npt.NDArray[np.float32]) -> tuple[Frame, npt.NDArray[Any]] | None:
    """Cut the rotated box `quad` out upright, with a quiet zone; returns the crop and crop→frame map."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(quad)
    if w < 8 or h < 8:
        return None
    # The detector's box hugs the bars; add a quiet zone on every side (more along the bars' run).
    long_side, short_side = max(w, h), min(w, h)
    pad = 0.15 * long_side + 10
    w2, h2 = (w + 2 * pad, h + 0.4 * short_side) if w >= h else (w + 0.4 * short_side, h + 2 * pad)
    box = cv2.boxPoints(((cx, cy), (w2, h2), angle)).astype(np.float32)
    out_w, out_h = round(w2), round(h2)
    # boxPoints order: bottom-left, top-left, top-right, bottom-right of the rotated rectangle.
    target = np.array([[0, out_h - 1], [0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1]], dtype=np.float32)
    to_crop = cv2.getPerspectiveTransform(box, target)
    crop = cv2.warpPerspective(gray, to_crop, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, np.linalg.inv(to_crop)


def _map_corners(corners: tuple[Point, ...], to_frame: npt.NDArray[Any]) -> tuple[Point, Point, Point, Point]:
    pts = np.array([corners], dtype=np.float64)
    mapped = cv2.perspectiveTransform(pts, to_frame)[0]
    a, b, c, d = ((round(x), round(y)) for x, y in mapped)
    return a, b, c, d


def decode_frame(frame: Frame, options: DecodeOptions, locator: Locator | None = None) -> list[Decoded]:
    """Every barcode of the configured symbologies in `frame` (BGR or gray), each once."""
    gray = to_gray(frame)
    found: dict[tuple[str, str], Decoded] = {}
    for result in _read(gray, options.zxing_formats, options):
        item = _decoded(result, _corners(result.position), int(result.orientation))
        found.setdefault(item.key, item)
    linear = options.linear_formats
    if options.rotated and linear is not None and locator is not None:
        for quad in locator.locate(gray):
            cut = _upright_crop(gray, quad)
            if cut is None:
                continue
            crop, to_frame = cut
            for result in _read(crop, linear, options, crop=True):
                corners = _map_corners(_corners(result.position), to_frame)
                item = _decoded(result, corners, _angle(corners))
                found.setdefault(item.key, item)
    return list(found.values())


def _angle(corners: tuple[Point, Point, Point, Point]) -> int:
    """Orientation in degrees of the code's top edge, as zxing-cpp reports it (clockwise)."""
    (x0, y0), (x1, y1) = corners[0], corners[1]
    return round(float(np.degrees(np.arctan2(y1 - y0, x1 - x0))))
