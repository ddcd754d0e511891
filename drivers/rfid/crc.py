"""The CRC-16 table both reader CRCs are built on (CCITT polynomial 0x1021, MSB first), pure.

Entry `i` is what shifting the byte `i` out of the top of the 16-bit register through 8 steps
XORs into it (zeros shifted in): each step's decision depends on that top byte only, so one
lookup per byte equals the bit-by-bit loop. M100 tag reads (`m100.gen2_crc`, the EPC Gen2 CRC)
and ThingMagic frames (`thingmagic.crc16`) use it differently.
"""

from __future__ import annotations

__all__ = ["CCITT_TABLE"]


def _table() -> tuple[int, ...]:
    table = []
    for top in range(256):
        crc = top << 8
        for _ in range(8):
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if crc & 0x8000 else 0)
        table.append(crc)
    return tuple(table)


CCITT_TABLE = _table()
