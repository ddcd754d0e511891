"""Throughput of the pure RFID decoders and of the presence tracker, in one thread.

    python bench/rfid_decoders.py [--reads 200000]

Feeds a stream of tag-read frames (200 distinct EPCs) in 4 KiB chunks, as a serial port returns
them, and reports decoded reads per second of CPU for each protocol and for presence tracking.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.rfid import m100, r2000, thingmagic
from drivers.rfid.epc import decode_epc
from drivers.rfid.presence import PresenceTracker


def chunks(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=200_000)
    args = parser.parse_args()
    n = args.reads
    base = int("3074257BF7194E4000000000", 16)
    epcs = [(base | i).to_bytes(12, "big") for i in range(1, 201)]

    r2000_stream = chunks(b"".join(r2000.tag_report(epcs[i % 200], rssi=-50 - i % 20) for i in range(n)))
    m100_stream = chunks(b"".join(m100.tag_notice(epcs[i % 200], rssi=-50 - i % 20) for i in range(n)))
    tags = [thingmagic.TagRead(e, 0x3000, m100.gen2_crc(b"\x30\x00" + e), 3, -55, 1, 915250, 10) for e in epcs[:8]]
    tm_frame = thingmagic.encode_response(thingmagic.OP_GET_TAG_BUFFER, thingmagic.tag_buffer_data(tags))
    tm_stream = chunks(tm_frame * (n // 8))

    def run(name: str, stream: list[bytes], decode: object) -> None:
        t0 = time.process_time()
        count = decode(stream)  # type: ignore[operator]
        cpu = time.process_time() - t0
        print(f"{name:<28} {count:>8} reads  {count / cpu:>10,.0f} reads/s of CPU")

    def r2000_decode(stream: list[bytes]) -> int:
        decoder = r2000.Decoder()
        return sum(len(decoder.feed(c)) for c in stream)

    def m100_decode(stream: list[bytes]) -> int:
        decoder = m100.Decoder()
        return sum(len(decoder.feed(c)) for c in stream)

    def tm_decode(stream: list[bytes]) -> int:
        decoder = thingmagic.FrameDecoder()
        total = 0
        for c in stream:
            for frame in decoder.feed(c):
                buffer = thingmagic.parse_tag_buffer(frame.data)
                total += len(buffer.tags) if buffer else 0
        return total

    def presence(stream: list[bytes]) -> int:
        tracker = PresenceTracker(absent_after=2.0)
        for i in range(n):
            tracker.observe(epcs[i % 200], 1, -50.0, 1000.0 + i / 2000)
            if i % 200 == 0:
                tracker.expire(1000.0 + i / 2000)
        return n

    def epc_decode(stream: list[bytes]) -> int:
        for i in range(n):
            decode_epc(epcs[i % 200])
        return n

    run("r2000 frames", r2000_stream, r2000_decode)
    run("m100 frames (+ tag CRC)", m100_stream, m100_decode)
    run("thingmagic tag buffers", tm_stream, tm_decode)
    run("presence tracker", [], presence)
    run("EPC decode (cached)", [], epc_decode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
