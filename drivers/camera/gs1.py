"""GS1 contents (GS1-128, GS1 DataMatrix, GS1 QR, DataBar) as application identifiers, via biip.

Pure: a decoded text in, a JSON-ready dict out. The dict carries every element string under
`ais` (AI → value as printed) and the commonly used ones under plain names, so a WMS can take
`sscc` or `gtin` without knowing AI numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import biip

__all__ = ["Gs1Result", "parse_gs1"]

# AI → plain field name for the element strings most used in logistics.
_NAMED = {
    "00": "sscc",
    "01": "gtin",
    "02": "content_gtin",
    "10": "batch",
    "11": "production_date",
    "13": "packaging_date",
    "15": "best_before",
    "17": "expiry",
    "21": "serial",
    "37": "count",
    "400": "order_number",
    "410": "ship_to_gln",
    "420": "ship_to_postcode",
}
_WEIGHTS = {"310": "net_weight_kg", "330": "gross_weight_kg", "320": "net_weight_lb", "340": "gross_weight_lb"}


@dataclass(frozen=True, slots=True)
class Gs1Result:
    """`data` when the content parsed; otherwise `error` says why (the reading is then uncertain)."""

    data: dict[str, Any] | None
    error: str | None


def parse_gs1(text: str, symbology_identifier: str = "") -> Gs1Result:
    """Parse GS1 element strings (FNC1 as the GS character `\\x1d`, as zxing-cpp's plain text gives it)."""
    value = symbology_identifier + text if symbology_identifier.startswith("]") else text
    try:
        result = biip.parse(value)
    except biip.ParseError as err:
        return Gs1Result(None, str(err))
    except (IndexError, KeyError, ValueError, TypeError) as err:  # biip on some malformed input (e.g. "]")
        return Gs1Result(None, f"not parseable as GS1 ({type(err).__name__}: {err})")
    message = result.gs1_message
    if message is None:
        return Gs1Result(None, result.gs1_message_error or "not GS1 element strings")
    ais: dict[str, str] = {}
    data: dict[str, Any] = {"hri": message.as_hri(), "ais": ais}
    for element in message.element_strings:
        ai = element.ai.ai
        ais[ai] = element.value
        name = _NAMED.get(ai)
        if element.date is not None:
            shown: Any = element.date.isoformat()
        elif element.decimal is not None:
            shown = float(element.decimal)
        elif ai == "37":
            shown = int(element.value)
        else:
            shown = element.value
        if name is not None:
            data.setdefault(name, shown)
        elif ai[:3] in _WEIGHTS and element.decimal is not None:
            data.setdefault(_WEIGHTS[ai[:3]], float(element.decimal))
    return Gs1Result(data, None)
