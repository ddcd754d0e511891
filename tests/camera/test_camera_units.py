"""Pure parts: deduplication (fake clock), GS1 parsing, config shape and claims, decoder robustness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.camera import CameraConfig
from drivers.camera.capture import CapturedFrame
from drivers.camera.config import source_kind
from drivers.camera.decode import Decoded, DecodeOptions, decode_frame, symbology_name
from drivers.camera.dedupe import Deduper
from drivers.camera.driver import barcode_fields
from drivers.camera.gs1 import parse_gs1
from edge_agent.config import ConfigError, parse_config
from tests.helpers import agent_yaml

# -- dedupe -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_frames_are_one_label_and_a_return_after_the_window_is_new() -> None:
    clock = FakeClock()
    d = Deduper(2.0, clock=clock)
    assert d.seen(("code128", "A"))
    for _ in range(50):  # 5 s under the camera at 10 fps: still the same label
        clock.now += 0.1
        assert not d.seen(("code128", "A"))
    clock.now += 2.5  # gone for longer than the window, then seen again: the next parcel
    assert d.seen(("code128", "A"))
    clock.now += 1.0
    assert not d.seen(("code128", "A"))
    assert d.seen(("ean13", "A"))  # the symbology is part of the identity
    assert d.suppressed == 51


def test_late_frames_from_parallel_decoding_do_not_make_new_labels() -> None:
    d = Deduper(1.0, clock=FakeClock())
    assert d.seen("X", at=10.2)
    assert not d.seen("X", at=10.1)  # an older frame finished later
    assert not d.seen("X", at=11.1)  # within the window of the newest sighting
    assert d.seen("X", at=12.2)


def test_expire_bounds_memory() -> None:
    clock = FakeClock()
    d = Deduper(1.0, clock=clock, max_keys=100)
    for i in range(1000):
        d.seen(i)
        clock.now += 0.01
    assert len(d) <= 101
    clock.now += 5
    d.expire()
    assert len(d) == 0


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 0.5)), max_size=200))
def test_dedupe_never_reports_a_code_twice_within_the_window(events: list[tuple[int, float]]) -> None:
    clock = FakeClock()
    d = Deduper(1.0, clock=clock)
    last_new: dict[int, float] = {}
    last_seen: dict[int, float] = {}
    for key, step in events:
        clock.now += step
        new = d.seen(key)
        if key in last_seen:
            assert new == (clock.now - last_seen[key] > 1.0)
        else:
            assert new
        if new:
            last_new[key] = clock.now
        last_seen[key] = clock.now


# -- GS1 --------------------------------------------------------------------------------------


def test_gs1_128_sscc_label() -> None:
    result = parse_gs1("00376104250021234569", "]C1")
    assert result.error is None and result.data is not None
    assert result.data["sscc"] == "376104250021234569"
    assert result.data["ais"] == {"00": "376104250021234569"}
    assert result.data["hri"] == "(00)376104250021234569"


def test_gs1_datamatrix_with_separators_dates_and_weights() -> None:
    result = parse_gs1("010950400005910110ABC123\x1d17260131310300175021XYZ", "]d2")
    assert result.data is not None
    assert result.data["gtin"] == "09504000059101"
    assert result.data["batch"] == "ABC123"
    assert result.data["expiry"] == "2026-01-31"
    assert result.data["net_weight_kg"] == pytest.approx(1.75)
    assert result.data["serial"] == "XYZ"
    assert result.data["ais"]["3103"] == "001750"


def test_bad_gs1_content_is_an_error_not_an_exception() -> None:
    result = parse_gs1("168901", "]C1")  # the real code128-1/1.png: AI 16 needs 6 digits
    assert result.data is None and result.error and "16" in result.error


@settings(max_examples=300)
@given(
    st.text(max_size=80) | st.text(alphabet="0123456789]\x1d()C1d2", max_size=60),
    st.sampled_from(["", "]C1", "]d2", "]Q3", "]e0", "]X9"]),
)
@example("]", "")
def test_gs1_parser_never_raises(text: str, ident: str) -> None:
    result = parse_gs1(text, ident)
    assert (result.data is None) != (result.error is None)


# -- config -----------------------------------------------------------------------------------

ISSUE_SHAPE = """
  - id: conveyor-cam-1
    driver: camera
    source: /dev/video0        # device index or path, video file, rtsp://... or http://... URL, or a folder
    formats: [code128, ean13, upca, itf, code39, datamatrix, qr, pdf417]
    rotated: false             # locate rotated labels with OpenCV, decode crops with zxing-cpp
    dedupe_window: 2s
    fps: 10                    # cap; a folder of images is read as frames in name order at this rate
"""


def _config_text(tmp_path, devices: str) -> str:  # type: ignore[no-untyped-def]
    head = agent_yaml(tmp_path, 1883, [])
    return head.replace("devices: []\n", "devices:\n" + devices.lstrip("\n"))


def test_the_issue_config_shape_is_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = parse_config(_config_text(tmp_path, ISSUE_SHAPE), "config.yaml")
    (cam,) = loaded.devices
    assert isinstance(cam, CameraConfig)
    assert cam.source == "/dev/video0" and cam.kind == "device"
    assert cam.formats == ["code128", "ean13", "upca", "itf", "code39", "datamatrix", "qr", "pdf417"]
    assert cam.dedupe_window == 2.0 and cam.fps == 10 and cam.rotated is False
    assert cam.claims() == {"camera:/dev/video0": None}


def test_two_devices_on_one_camera_are_a_config_error_but_files_and_urls_are_free(tmp_path) -> None:  # type: ignore[no-untyped-def]
    devices = """
  - {id: cam-a, driver: camera, source: 0}
  - {id: cam-b, driver: camera, source: /dev/video0}
  - {id: cam-c, driver: camera, source: "rtsp://127.0.0.1:8554/line1"}
  - {id: cam-d, driver: camera, source: "rtsp://127.0.0.1:8554/line1"}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(_config_text(tmp_path, devices), "config.yaml")
    assert "cam-b" in str(err.value) and "cam-c" not in str(err.value) and "cam-d" not in str(err.value)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        CameraConfig(id="c", driver="camera", source="x.mp4", formats=["code128", "ean14"], fps=0, roi={"x": 1})  # type: ignore[arg-type]
    text = str(err.value)
    assert "formats" in text and "fps" in text and "roi" in text


def test_source_kinds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert source_kind(0) == "device" and source_kind("/dev/v4l/by-id/usb-cam-video-index0") == "device"
    assert source_kind("rtsp://127.0.0.1/x") == "url" and source_kind("HTTP://127.0.0.1/x.mjpg") == "url"
    assert source_kind(str(tmp_path)) == "folder" and source_kind("/srv/replay/") == "folder"
    assert source_kind("/srv/line1.mp4") == "file"
    assert CameraConfig(id="c", source="3").source == 3
    assert CameraConfig(id="c", source="/srv/line1.mp4").claims() == {}


# -- decoder ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 400),
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["noise", "stripes", "blocks"]),
    st.booleans(),
)
def test_decoder_never_raises_on_garbage_frames(w: int, h: int, seed: int, pattern: str, rotated: bool) -> None:
    rng = np.random.default_rng(seed)
    if pattern == "noise":
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif pattern == "stripes":  # bar-like garbage: random widths of black and white columns
        row = np.repeat(rng.integers(0, 2, w) * 255, 1).astype(np.uint8)
        frame = np.repeat(row[None, :], h, axis=0)
    else:  # module-like garbage: random black/white cells
        cells = (rng.integers(0, 2, (max(1, h // 4), max(1, w // 4))) * 255).astype(np.uint8)
        frame = np.kron(cells, np.ones((4, 4), np.uint8))[:h, :w]
    options = DecodeOptions(formats=("code128", "qr", "ean13", "datamatrix", "itf"), rotated=rotated)
    found = decode_frame(np.ascontiguousarray(frame), options)
    assert all(isinstance(f, Decoded) and f.symbology in options.formats for f in found)


def test_unknown_formats_are_refused_and_result_formats_are_named() -> None:
    with pytest.raises(ValueError):
        DecodeOptions(formats=("code128", "nope"))
    import zxingcpp

    assert symbology_name(zxingcpp.BarcodeFormat.Code39Ext) == "code39"
    assert symbology_name(zxingcpp.BarcodeFormat.DataBarExpanded) == "databar_expanded"
    assert symbology_name(zxingcpp.BarcodeFormat.UPCA) == "upca"


def test_positions_map_back_through_roi_and_downscale() -> None:
    frame = CapturedFrame(np.zeros((10, 10), np.uint8), 1, 0.0, 0.0, offset=(100, 50), scale=0.5)
    item = Decoded("X", b"X", "code128", "]C0", False, ((10, 10), (30, 10), (30, 20), (10, 20)), 0)
    fields, error = barcode_fields(item, frame)
    assert error is None
    assert fields["position"]["corners"] == [[120, 70], [160, 70], [160, 90], [120, 90]]
    assert (fields["position"]["x"], fields["position"]["width"]) == (120, 40)
    assert "gs1" not in fields
