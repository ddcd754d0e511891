"""Read rates on real photos (zxing-cpp's test samples), per symbology, and no reads on false positives.

Every image is decoded once per mode for the whole module (module-scoped fixtures). The floors
are the issue's figures (zxing-cpp's own read rates with its default, exhaustive settings):
`try_harder` is that mode. The driver's default (fast) mode and its rotated mode have their own
floors, measured here: they guard against regressions and are documented in the driver README.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from drivers.camera.decode import DecodeOptions, Locator, decode_frame
from tests.camera.common import FOLDER_SYMBOLOGY, Sample, samples

# The issue's figures (percent read correctly).
ISSUE_FLOORS = {
    "code128": 100,
    "itf": 100,
    "code39": 100,
    "datamatrix": 96,
    "pdf417": 100,
    "qrcode": 91,
    "ean13": 67,
    "upca": 64,
}
# The fast default mode (no 90° / downscale / second binarizer passes), as measured on these images.
DEFAULT_FLOORS = {**ISSUE_FLOORS, "itf": 95, "pdf417": 96, "qrcode": 87}
ROTATED_FLOORS = {**DEFAULT_FLOORS, "upca": 80}

Rates = dict[str, tuple[int, int]]


def _read_rates(options: Callable[[str], DecodeOptions]) -> tuple[Rates, Counter[str]]:
    locator = Locator()
    rates: Rates = {}
    misreads: Counter[str] = Counter()
    for prefix in ISSUE_FLOORS:
        ok = total = 0
        for sample in samples(prefix):
            image = sample.image()
            if image is None:  # an undecodable file in the sample set (e.g. .bin-only entries)
                continue
            found = decode_frame(image, options(sample.symbology), locator)
            total += 1
            ok += any(sample.matches(f.text, f.raw) for f in found)
            misreads[prefix] += sum(f.symbology != sample.symbology for f in found)
        rates[prefix] = (ok, total)
    return rates, misreads


@pytest.fixture(scope="module")
def harder() -> tuple[Rates, Counter[str]]:
    return _read_rates(lambda s: DecodeOptions(formats=(s,), try_harder=True, try_invert=True))


@pytest.fixture(scope="module")
def default() -> tuple[Rates, Counter[str]]:
    return _read_rates(lambda s: DecodeOptions(formats=(s,)))


@pytest.fixture(scope="module")
def rotated() -> tuple[Rates, Counter[str]]:
    return _read_rates(lambda s: DecodeOptions(formats=(s,), rotated=True))


def _percent(rate: tuple[int, int]) -> float:
    ok, total = rate
    assert total > 0, "no images for this symbology"
    return 100.0 * ok / total


@pytest.mark.parametrize("prefix", sorted(ISSUE_FLOORS))
def test_read_rate_at_least_the_issue_figures(prefix: str, harder: tuple[Rates, Counter[str]]) -> None:
    rates, misreads = harder
    assert _percent(rates[prefix]) >= ISSUE_FLOORS[prefix], f"{prefix}: {rates[prefix]}"
    assert misreads[prefix] == 0  # restricted to one format, nothing else is reported


@pytest.mark.parametrize("prefix", sorted(ISSUE_FLOORS))
def test_read_rate_of_the_fast_default_mode(prefix: str, default: tuple[Rates, Counter[str]]) -> None:
    rates, _ = default
    assert _percent(rates[prefix]) >= DEFAULT_FLOORS[prefix], f"{prefix}: {rates[prefix]}"


@pytest.mark.parametrize("prefix", sorted(ISSUE_FLOORS))
def test_read_rate_of_rotated_mode(prefix: str, rotated: tuple[Rates, Counter[str]]) -> None:
    rates, _ = rotated
    assert _percent(rates[prefix]) >= ROTATED_FLOORS[prefix], f"{prefix}: {rates[prefix]}"


def _false_positive_images() -> list[Sample]:
    return [s for s in samples("falsepositives") if s.image() is not None]


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(formats=tuple(sorted(set(FOLDER_SYMBOLOGY.values())))),
        DecodeOptions(formats=tuple(sorted(set(FOLDER_SYMBOLOGY.values()))), rotated=True),
        DecodeOptions(formats=tuple(sorted(set(FOLDER_SYMBOLOGY.values()))), try_harder=True, try_invert=True),
    ],
    ids=["default", "rotated", "harder"],
)
def test_no_reads_on_false_positives(options: DecodeOptions) -> None:
    images = _false_positive_images()
    assert len(images) >= 15
    locator = Locator()
    reads = {s.path.name: [f.text for f in decode_frame(s.image(), options, locator)] for s in images}  # type: ignore[arg-type]
    assert {k: v for k, v in reads.items() if v} == {}
