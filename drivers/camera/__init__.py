"""Camera barcode driver: OpenCV capture, zxing-cpp decoding, GS1 parsing, one reading per label."""

from drivers.camera.config import CameraConfig
from drivers.camera.driver import CameraDriver

__all__ = ["CameraConfig", "CameraDriver"]
