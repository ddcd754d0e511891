"""Shared by the camera tests: the real test images, and a driver context that collects readings."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy.typing as npt

from edge_agent.driver import DriverContext
from edge_agent.reading import Reading

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "barcodes"

# Test-image folder prefix → our symbology name.
FOLDER_SYMBOLOGY = {
    "code128": "code128",
    "code39": "code39",
    "datamatrix": "datamatrix",
    "ean13": "ean13",
    "ean8": "ean8",
    "itf": "itf",
    "pdf417": "pdf417",
    "qrcode": "qr",
    "upca": "upca",
    "upce": "upce",
    "rss14": "databar",
    "rssexpanded": "databar_expanded",
}


def require_testdata() -> Path:
    """The image folder; a missing folder fails the test (it must not be skipped silently)."""
    if not (TESTDATA / "README.md").is_file():
        raise AssertionError(
            f"camera test images not found at {TESTDATA}: the tests need ../shared/testdata/barcodes next to "
            "the repository (zxing-cpp's test samples; see that folder's README)"
        )
    return TESTDATA


@dataclass(frozen=True)
class Sample:
    """One real image and what it holds: `text` (from N.txt) or `raw` (from N.bin)."""

    folder: str
    path: Path
    text: str | None
    raw: bytes | None
    result: dict[str, str]

    @property
    def symbology(self) -> str:
        return FOLDER_SYMBOLOGY[self.folder.rsplit("-", 1)[0]]

    def image(self) -> npt.NDArray[Any] | None:
        return cv2.imread(str(self.path), cv2.IMREAD_COLOR)

    def matches(self, text: str, raw: bytes) -> bool:
        if self.text is not None:
            return text.replace("\r\n", "\n") == self.text.replace("\r\n", "\n")
        return raw == self.raw


def samples(prefix: str) -> list[Sample]:
    """Every image of the folders `<prefix>-N`, with its expected content."""
    found: list[Sample] = []
    for folder in sorted(require_testdata().glob(f"{prefix}-*")):
        for path in sorted(folder.iterdir()):
            if path.suffix in (".txt", ".bin") or not path.is_file():
                continue
            stem = path.with_suffix("")
            txt, binf, res = Path(f"{stem}.txt"), Path(f"{stem}.bin"), Path(f"{stem}.result.txt")
            result: dict[str, str] = {}
            if res.exists():
                for line in res.read_text(encoding="utf-8").splitlines():
                    key, _, value = line.partition("=")
                    result[key.strip()] = value.strip()
            found.append(
                Sample(
                    folder.name,
                    path,
                    txt.read_text(encoding="utf-8") if txt.exists() else None,
                    binf.read_bytes() if binf.exists() else None,
                    result,
                )
            )
    return found


class Collector:
    """A real DriverContext whose readings land in a list (for driver tests without an agent)."""

    def __init__(self, device_id: str = "cam-test") -> None:
        self.readings: list[Reading] = []
        self.states: list[str] = []
        self._lock = threading.Lock()
        self.ctx = DriverContext(device_id, emit_many=self._emit, on_state=self._state)

    def _emit(self, readings: list[Reading]) -> None:
        with self._lock:
            self.readings.extend(readings)

    def _state(self, device: str, state: str, error: str | None) -> None:
        with self._lock:
            self.states.append(state)

    def values(self) -> list[str]:
        with self._lock:
            return [r.value for r in self.readings]
