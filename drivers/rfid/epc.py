"""EPC → GS1 with epcpy (GS1 EPC Tag Data Standard): scheme, pure-identity URI, element string.

EPCs that are not GS1 encodings (TIDs used as EPC, `E2…`, vendor numbering) are not an error: they
have no decoding and are reported as raw hex only. Decodings are cached: a portal sees the same
few hundred EPCs over and over.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from epcpy.epc_schemes.base_scheme import GS1Element
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import TAG_ENCODABLE_CLASSES, hex_to_tag_encodable

__all__ = ["EpcInfo", "decode_epc", "scheme_of"]

# Header byte → TDS binary scheme name ("sgtin-96", "sscc-96", "grai-170", ...).
_SCHEMES: dict[int, str] = {
    int(header.value, 2): header.name.lower().replace("_", "-")
    for cls in TAG_ENCODABLE_CLASSES
    for header in cls.BinaryHeader
}


@dataclass(frozen=True, slots=True)
class EpcInfo:
    scheme: str  # TDS binary scheme, e.g. "sgtin-96"
    uri: str  # pure-identity URI, e.g. "urn:epc:id:sgtin:0614141.812345.6789"
    gs1: str | None  # GS1 element string, e.g. "(01)80614141123458(21)6789"; None for GID, USDOD, ...

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheme": self.scheme, "uri": self.uri}
        if self.gs1 is not None:
            out["gs1"] = self.gs1
        return out


def scheme_of(epc: bytes) -> str | None:
    """The TDS scheme named by the EPC's header byte, or None (not a GS1 encoding)."""
    return _SCHEMES.get(epc[0]) if epc else None


def decode_epc(epc: bytes | str) -> EpcInfo | None:
    """Decode an EPC (bytes or hex); None when it is not a valid GS1 EPC encoding."""
    raw = bytes.fromhex(epc) if isinstance(epc, str) else bytes(epc)
    return _decode(raw)


@lru_cache(maxsize=8192)
def _decode(epc: bytes) -> EpcInfo | None:
    scheme = scheme_of(epc)
    if scheme is None:
        return None
    try:
        tag = hex_to_tag_encodable(epc.hex().upper())
        uri = str(tag.epc_uri)
        gs1 = tag.gs1_element_string() if isinstance(tag, GS1Element) else None
    # epcpy reports bad encodings (wrong partition, filter, size, characters) in several ways; an
    # undecodable EPC is data to pass on raw, never a reason for the driver to fail.
    except (ConvertException, ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None
    return EpcInfo(scheme, uri, gs1)
