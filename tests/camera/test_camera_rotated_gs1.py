"""Rotated labels (45°) read in rotated mode; GS1-128, GS1 DataMatrix and DataBar yield parsed AIs."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from drivers.camera.capture import CapturedFrame
from drivers.camera.decode import DecodeOptions, Locator, decode_frame
from drivers.camera.demo import DemoLabel, conveyor_frame
from drivers.camera.driver import barcode_fields
from tests.camera.common import Sample, samples


def turned(image: npt.NDArray[Any], angle: float) -> npt.NDArray[Any]:
    """The whole photo turned by `angle` degrees on a white canvas large enough to hold it."""
    h, w = image.shape[:2]
    side = int(np.hypot(w, h)) + 40
    canvas = np.full((side, side, 3), 255, np.uint8)
    y0, x0 = (side - h) // 2, (side - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = image
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    return cv2.warpAffine(canvas, turn, (side, side), borderValue=(255, 255, 255))


# Linear symbologies; the floor is the share of upright-readable real photos that must still be
# read when turned by 45° (measured: code128 13/20, code39 9/14, itf 13/19, ean13 13/27, upca 28/36).
ROTATED_FLOORS = {"code128": 0.6, "code39": 0.6, "itf": 0.6, "ean13": 0.45, "upca": 0.7}


@pytest.fixture(scope="module")
def turned_photos() -> dict[str, list[tuple[Sample, npt.NDArray[Any]]]]:
    locator = Locator()
    out: dict[str, list[tuple[Sample, npt.NDArray[Any]]]] = {}
    for prefix in ROTATED_FLOORS:
        out[prefix] = []
        for sample in samples(prefix):
            image = sample.image()
            if image is None:
                continue
            upright = decode_frame(image, DecodeOptions(formats=(sample.symbology,)), locator)
            if any(sample.matches(f.text, f.raw) for f in upright):
                out[prefix].append((sample, turned(image, 45)))
    return out


@pytest.mark.parametrize("prefix", sorted(ROTATED_FLOORS))
def test_real_photos_turned_45_degrees_read_only_in_rotated_mode(
    prefix: str, turned_photos: dict[str, list[tuple[Sample, npt.NDArray[Any]]]]
) -> None:
    locator = Locator()
    cases = turned_photos[prefix]
    assert len(cases) >= 10
    plain = rotated = 0
    for sample, image in cases:
        formats = (sample.symbology,)
        plain += any(sample.matches(f.text, f.raw) for f in decode_frame(image, DecodeOptions(formats), locator))
        found = decode_frame(image, DecodeOptions(formats, rotated=True), locator)
        rotated += any(sample.matches(f.text, f.raw) for f in found)
    assert plain == 0  # zxing-cpp alone does not read linear codes at 45°
    assert rotated / len(cases) >= ROTATED_FLOORS[prefix], f"{prefix}: {rotated}/{len(cases)}"


@pytest.mark.parametrize("angle", [15, 30, 45, 60, 75, 135, -45])
def test_printed_labels_at_any_angle_in_a_720p_frame(angle: float) -> None:
    label = DemoLabel("(00)376104250021234569", "code128", gs1=True, angle=angle, caption="SSCC")
    frame = conveyor_frame(label, seed=angle % 7)
    found = decode_frame(frame, DecodeOptions(("code128", "ean13", "qr", "datamatrix"), rotated=True), Locator())
    assert [(f.symbology, f.text) for f in found] == [("code128", "00376104250021234569")]
    # The reported corners lie on the label, around the frame's centre where it was pasted.
    xs = [p[0] for p in found[0].corners]
    ys = [p[1] for p in found[0].corners]
    assert 300 < sum(xs) / 4 < 980 and 160 < sum(ys) / 4 < 560


def _fields(image: npt.NDArray[Any], formats: tuple[str, ...]) -> list[dict[str, Any]]:
    frame = CapturedFrame(image, 1, 0.0, 0.0)
    out = []
    for item in decode_frame(image, DecodeOptions(formats, try_harder=True)):
        fields, _ = barcode_fields(item, frame)
        out.append({"value": item.text, **fields})
    return out


def _sample(folder: str, name: str) -> Sample:
    (found,) = [s for s in samples(folder.rsplit("-", 1)[0]) if s.folder == folder and s.path.name == name]
    return found


def test_gs1_datamatrix_photo_yields_ais() -> None:
    sample = _sample("datamatrix-1", "gs1-figure-4.15.1-2-32x32.png")
    assert sample.result.get("contentType") == "GS1"
    (read,) = _fields(sample.image(), ("datamatrix",))  # type: ignore[arg-type]
    assert read["symbology_identifier"] == "]d2"
    gs1 = read["gs1"]
    assert gs1["gtin"] == "09504000059101" and gs1["serial"] == "12345678p901"
    assert gs1["batch"] == "1234567p" and gs1["expiry"] == "2014-11-20"
    assert gs1["ais"]["8200"] == "http://www.gs1.org/demo/"


def test_gs1_datamatrix_photo_of_a_product() -> None:
    sample = _sample("datamatrix-3", "#794.png")
    (read,) = _fields(sample.image(), ("datamatrix",))  # type: ignore[arg-type]
    assert read["gs1"]["gtin"] == "08903819987659" and read["gs1"]["ais"]["21"].startswith("S1ND6MPP")


def test_real_gs1_128_with_malformed_content_is_uncertain_not_lost() -> None:
    sample = _sample("code128-1", "1.png")
    (read,) = _fields(sample.image(), ("code128",))  # type: ignore[arg-type]
    assert read["value"] == "168901" and read["symbology_identifier"] == "]C1"
    assert read["gs1"] is None and "16" in read["gs1_error"]


def test_gs1_128_shipping_label_printed_and_photographed_by_the_video_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    label = DemoLabel("(00)376104250021234569(02)04012345678901(37)24(400)PO-4711", "code128", gs1=True)
    frame = conveyor_frame(label, module=2)
    # Through a lossy JPEG round trip, as a camera stream would deliver it.
    jpeg = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_COLOR)
    (read,) = _fields(jpeg, ("code128",))
    gs1 = read["gs1"]
    assert gs1["sscc"] == "376104250021234569" and gs1["content_gtin"] == "04012345678901"
    assert gs1["count"] == 24 and gs1["order_number"] == "PO-4711"
    assert gs1["hri"] == "(00)376104250021234569(02)04012345678901(37)24(400)PO-4711"


def test_databar_expanded_photos_yield_ais() -> None:
    parsed = read_ok = 0
    cases = [s for s in samples("rssexpanded") if s.image() is not None]
    for sample in cases:
        for read in _fields(sample.image(), ("databar_expanded",)):  # type: ignore[arg-type]
            if sample.matches(read["value"], b""):
                read_ok += 1
                # Every GS1 content is either parsed or flagged (some samples hold invalid AI values).
                assert (read["gs1"] is None) != ("gs1_error" not in read), read
                if read["gs1"] is not None:
                    assert read["gs1"]["ais"] and read["gs1"]["hri"].startswith("(")
                    parsed += 1
    assert read_ok == len(cases)
    assert parsed >= 0.8 * len(cases), f"{parsed}/{len(cases)}"
