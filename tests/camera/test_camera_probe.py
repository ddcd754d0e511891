"""`edge-agent probe camera`: the technician tool on real images, a video and a missing source."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import pytest

from drivers.camera.demo import DEMO_LABELS, conveyor_frame
from drivers.camera.probe import configure
from tests.camera.common import samples


def _probe(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    handler = configure(parser)
    return handler(parser.parse_args(list(argv)))


def test_probe_an_image_prints_the_code_and_saves_an_annotated_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = next(s for s in samples("datamatrix") if s.path.name == "gs1-figure-4.15.1-2-32x32.png")
    out = tmp_path / "annotated.png"
    assert _probe(str(sample.path), "--formats", "datamatrix", "--save", str(out)) == 0
    text = capsys.readouterr().out
    assert "datamatrix ]d2" in text and "GS1 (01)09504000059101" in text and "1 distinct code(s)" in text
    saved = cv2.imread(str(out))
    original = cv2.imread(str(sample.path))
    assert saved is not None and saved.shape == original.shape and (saved != original).any()


def test_probe_a_video_in_rotated_mode_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "tilted.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, 720))
    tilted = DEMO_LABELS[-1]
    assert tilted.angle == 30
    for _ in range(3):
        writer.write(conveyor_frame(tilted))
    writer.release()
    assert _probe(str(video), "--rotated", "--json", "--frames", "3", "--fps", "100") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["frame"] for line in lines] == [1, 2, 3]
    assert {line["value"] for line in lines} == {"00376104250021234576"}
    assert lines[0]["gs1"]["sscc"] == "376104250021234576"


def test_probe_reports_nothing_found_and_unreadable_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = next(s for s in samples("falsepositives") if s.image() is not None)
    assert _probe(str(empty.path)) == 1
    assert "0 distinct code(s)" in capsys.readouterr().out
    assert _probe(str(tmp_path / "missing.mp4")) == 2
    assert "no such file" in capsys.readouterr().out
