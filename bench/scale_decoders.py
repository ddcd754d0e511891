"""Scale parsers' throughput and the MT-SICS poll round trip over a pty.

Run by hand: `python bench/scale_decoders.py`. A scale sends at most a few hundred frames per
second (Toledo continuous at 9600 baud: ~55 frames/s), so the figures show the headroom.
"""

from __future__ import annotations

import threading
import time

from drivers.scale import ascii_profile, mt_sics, sma, toledo
from drivers.scale.config import ScaleConfig
from drivers.scale.driver import ScaleDriver
from drivers.scale.simulator import ScaleSimulator
from edge_agent.driver import DriverContext
from edge_agent.reading import Reading

N = 200_000


def throughput(name: str, decoder: object, frame: bytes, chunk: int = 4096) -> None:
    data = frame * N
    feed = decoder.feed  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    count = 0
    for i in range(0, len(data), chunk):
        count += len(feed(data[i : i + chunk]))
    elapsed = time.perf_counter() - t0
    assert count == N, (name, count)
    print(f"{name:14} {N / elapsed:>12,.0f} frames/s  {len(data) / elapsed / 1e6:6.1f} MB/s")


def poll_round_trip(seconds: float = 3.0) -> None:
    readings: list[Reading] = []
    with ScaleSimulator("mt-sics") as sim:
        config = ScaleConfig.model_validate(
            {"id": "b", "driver": "scale", "protocol": "mt-sics", "port": sim.port, "poll_interval": "1ms"}
        )
        ctx = DriverContext("b", emit_many=readings.extend)
        driver = ScaleDriver(config, ctx)
        thread = threading.Thread(target=driver.run)
        thread.start()
        time.sleep(seconds)
        ctx.stopping.set()
        thread.join()
        driver.close()
    print(
        f"MT-SICS SI poll over a pty, back to back: {len(readings) / seconds:,.0f} weights/s "
        f"({seconds * 1000 / max(1, len(readings)):.2f} ms per request/reply)"
    )


def main() -> None:
    throughput("mt-sics", mt_sics.Decoder(), b"S S     100.00 g\r\n")
    throughput("toledo", toledo.Decoder(), toledo.encode(123456))
    throughput(
        "toledo+chk+7E1",
        toledo.Decoder(with_checksum=True, data_parity="even"),
        bytes(b | 0x80 if b.bit_count() % 2 else b for b in toledo.encode(123456, with_checksum=True)),
    )
    throughput("sma", sma.Decoder(), b"\n 1G       5.025lb \r")
    throughput("ascii cas", ascii_profile.Decoder(ascii_profile.Profile.preset("cas")), b"ST,GS,+0001.50kg\r\n")
    poll_round_trip()


if __name__ == "__main__":
    main()
