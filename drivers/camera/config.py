"""The camera device's configuration: where frames come from and which symbologies to read."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.camera.decode import SYMBOLOGIES
from edge_agent import DeviceConfig, Duration

__all__ = ["CameraConfig", "Region", "SourceKind", "source_kind"]

SourceKind = Literal["device", "url", "folder", "file"]

Symbology = Literal[
    "code128",
    "ean13",
    "ean8",
    "upca",
    "upce",
    "itf",
    "code39",
    "code93",
    "codabar",
    "databar",
    "databar_expanded",
    "datamatrix",
    "qr",
    "microqr",
    "pdf417",
    "aztec",
    "maxicode",
]

DEFAULT_FORMATS: tuple[Symbology, ...] = ("code128", "ean13", "upca", "itf", "code39", "datamatrix", "qr", "pdf417")

_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)
_RESOLUTION = re.compile(r"^\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*$")


def source_kind(source: str | int) -> SourceKind:
    """What a `source` value names: a V4L2 device (index or /dev path), a URL, a folder or a file."""
    if isinstance(source, int) or source.strip().isdigit():
        return "device"
    if _URL.match(source):
        return "url"
    if source.startswith("/dev/"):
        return "device"
    if Path(source).is_dir() or source.endswith(("/", "\\")):
        return "folder"
    return "file"


class Region(BaseModel):
    """A rectangle in pixels of the camera's full frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: int = Field(ge=0, description="left edge, pixels from the left of the full frame")
    y: int = Field(ge=0, description="top edge, pixels from the top of the full frame")
    width: int = Field(gt=0, description="width in pixels")
    height: int = Field(gt=0, description="height in pixels")


class CameraConfig(DeviceConfig):
    """A camera (or a video, stream or folder of images) whose frames are searched for barcodes."""

    driver: Literal["camera"] = "camera"
    source: str | int = Field(
        description=(
            "where frames come from: a V4L2 device index (0) or path (/dev/video0, /dev/v4l/by-id/...), "
            "a video file, an rtsp:// or http:// URL, or a folder of images (read in name order)"
        )
    )
    formats: list[Symbology] = Field(
        default_factory=lambda: list(DEFAULT_FORMATS),
        min_length=1,
        description="symbologies to read; fewer formats decode faster and misread less",
    )
    rotated: bool = Field(
        False,
        description="also find linear codes at any angle (OpenCV locates them, zxing-cpp decodes the crops)",
    )
    dedupe_window: Duration = Field(
        2.0,
        description="a code seen again within this time of its last sighting is the same label, not a new reading",
    )
    fps: float = Field(10.0, gt=0, le=240, description="frames per second to decode at most")
    roi: Region | None = Field(None, description="only search this region of the frame (x, y, width, height)")
    downscale: float = Field(
        1.0, gt=0, le=1, description="shrink frames by this factor before decoding (0.5 halves each side)"
    )
    resolution: Annotated[str, Field(pattern=r"^\s*[0-9]+\s*[xX]\s*[0-9]+\s*$")] | None = Field(
        None, description="ask a V4L2 camera for this frame size, e.g. 1280x720"
    )
    workers: int = Field(2, ge=1, le=16, description="decoding threads (one per CPU core is right)")
    try_invert: bool = Field(False, description="also look for light-on-dark codes (slower)")
    try_harder: bool = Field(
        False, description="also search 90° rotations and downscaled copies of the frame (about 3x slower)"
    )
    loop: bool = Field(
        False,
        description="files and folders: start again at the end (replay); otherwise a folder is watched for new images",
    )
    open_timeout: Duration = Field(5.0, gt=0, description="URLs: how long connecting may take")
    read_timeout: Duration = Field(
        5.0, gt=0, description="URLs and devices: no frame for this long counts as a dropped stream"
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | int) -> str | int:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a device index cannot be negative")
            return value
        if not value.strip():
            raise ValueError("must name a device, file, URL or folder")
        if value.strip().isdigit():
            return int(value.strip())
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[Symbology]) -> list[Symbology]:
        seen: list[Symbology] = []
        for f in value:
            if f not in SYMBOLOGIES:  # pragma: no cover - the Literal and the table agree
                raise ValueError(f"unknown symbology {f!r}")
            if f not in seen:
                seen.append(f)
        return seen

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.source)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        if self.resolution is None:
            return None
        match = _RESOLUTION.match(self.resolution)
        assert match is not None
        return int(match.group(1)), int(match.group(2))

    def claims(self) -> dict[str, str | None]:
        """A V4L2 device is exclusive; files, folders and URLs are not held."""
        if self.kind != "device":
            return {}
        name = f"/dev/video{self.source}" if isinstance(self.source, int) else self.source
        # /dev/v4l/by-id/... and /dev/videoN are one camera when the link points there.
        return {f"camera:{os.path.realpath(name)}": None}
