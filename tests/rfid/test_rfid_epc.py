"""EPC → GS1 with epcpy: the GS1 Tag Data Standard example, other schemes, non-GS1 EPCs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid.epc import EpcInfo, decode_epc


def test_tds_sgtin_96_example() -> None:
    info = decode_epc("3074257BF7194E4000001A85")
    assert info == EpcInfo("sgtin-96", "urn:epc:id:sgtin:0614141.812345.6789", "(01)80614141123458(21)6789")
    assert info.as_dict() == {
        "scheme": "sgtin-96",
        "uri": "urn:epc:id:sgtin:0614141.812345.6789",
        "gs1": "(01)80614141123458(21)6789",
    }


def test_sscc_96() -> None:
    # urn:epc:tag:sscc-96:0.0614141.1234567890 (SSCC 106141412345678908)
    info = decode_epc(bytes.fromhex("3114257BF4499602D2000000"))
    assert info == EpcInfo("sscc-96", "urn:epc:id:sscc:0614141.1234567890", "(00)106141412345678908")


def _pack(fields: list[tuple[int, int]]) -> str:
    """Concatenate (value, bits) into a 96-bit EPC hex, independently of epcpy."""
    value, size = 0, 0
    for field, bits in fields:
        value = (value << bits) | field
        size += bits
    assert size == 96
    return f"{value:024X}"


def test_grai_96_sgln_96_giai_96_from_the_tds_bit_layouts() -> None:
    # Company prefix 0614141 (7 digits): partition 5, company prefix in 24 bits.
    grai = _pack([(0x33, 8), (1, 3), (5, 3), (614141, 24), (12345, 20), (400, 38)])
    assert decode_epc(grai) == EpcInfo("grai-96", "urn:epc:id:grai:0614141.12345.400", "(8003)00614141123452400")
    sgln = _pack([(0x32, 8), (1, 3), (5, 3), (614141, 24), (12345, 17), (400, 41)])
    assert decode_epc(sgln) == EpcInfo("sgln-96", "urn:epc:id:sgln:0614141.12345.400", "(414)0614141123452(254)400")
    giai = _pack([(0x34, 8), (1, 3), (5, 3), (614141, 24), (12345400, 58)])
    assert decode_epc(giai) == EpcInfo("giai-96", "urn:epc:id:giai:0614141.12345400", "(8004)061414112345400")


def test_gid_has_no_gs1_element_string() -> None:
    gid = _pack([(0x35, 8), (95100000, 28), (12345, 24), (400, 36)])
    info = decode_epc(gid)
    assert info == EpcInfo("gid-96", "urn:epc:id:gid:95100000.12345.400", None)
    assert "gs1" not in info.as_dict()


def test_non_gs1_epcs_are_not_decoded() -> None:
    assert decode_epc("E200301666130121155074EF") is None  # a TID used as EPC
    assert decode_epc("") is None
    assert decode_epc("30") is None  # SGTIN header, far too short
    assert decode_epc("3074257BF7194E40") is None


@given(st.binary(max_size=40))
def test_fuzz_never_raises(epc: bytes) -> None:
    info = decode_epc(epc)
    assert info is None or info.uri.startswith("urn:epc:id:")
