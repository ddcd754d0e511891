"""Against an independent implementation: pyModbusTCP's server (pure Python, no pymodbus code)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pyModbusTCP.server import DataBank, DataHandler, ModbusServer

from drivers.modbus.codec import encode_registers
from drivers.modbus.simulator import free_port
from tests.helpers import wait_until
from tests.modbus.common import device, running


class CountingHandler(DataHandler):  # type: ignore[misc]
    """pyModbusTCP's data handler, counting the requests it serves (address, count)."""

    def __init__(self, bank: DataBank) -> None:
        super().__init__(data_bank=bank)
        self.requests: Counter[tuple[str, int, int]] = Counter()

    def read_h_regs(self, address: int, count: int, srv_info: Any) -> Any:
        self.requests["holding", address, count] += 1
        return super().read_h_regs(address, count, srv_info)

    def read_i_regs(self, address: int, count: int, srv_info: Any) -> Any:
        self.requests["input", address, count] += 1
        return super().read_i_regs(address, count, srv_info)

    def read_coils(self, address: int, count: int, srv_info: Any) -> Any:
        self.requests["coil", address, count] += 1
        return super().read_coils(address, count, srv_info)


@pytest.fixture
def server() -> Iterator[tuple[ModbusServer, DataBank, CountingHandler]]:
    bank = DataBank(h_regs_size=60, i_regs_size=20, coils_size=100, d_inputs_size=16)
    handler = CountingHandler(bank)
    srv = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True, data_hdl=handler)
    srv.start()
    try:
        yield srv, bank, handler
    finally:
        srv.stop()


def test_types_orders_and_coalescing_against_pymodbustcp(
    server: tuple[ModbusServer, DataBank, CountingHandler],
) -> None:
    srv, bank, handler = server
    bank.set_holding_registers(0, [0x42F6, 0xE979, 0xE979, 0x42F6, 0xF642, 0x79E9, 0x79E9, 0xF642])
    bank.set_holding_registers(10, encode_registers(-123456789012, "int64", "CDAB"))
    bank.set_holding_registers(20, encode_registers("PYMODBUSTCP", "string", length=6))
    bank.set_input_registers(5, [0xFF38])  # -200
    bank.set_coils(90, [True])
    points = [
        *({"name": f"f_{o}", "table": "holding", "address": 2 * k, "type": "float32", "order": o}
          for k, o in enumerate(["ABCD", "CDAB", "BADC", "DCBA"])),
        {"name": "big", "table": "holding", "address": 10, "type": "int64", "order": "CDAB"},
        {"name": "name", "table": "holding", "address": 20, "type": "string", "length": 6},
        {"name": "temp", "table": "input", "address": 5, "type": "int16", "scale": 0.5, "offset": 100},
        {"name": "c0", "table": "coil", "address": 0},
        {"name": "c90", "table": "coil", "address": 90},
    ]  # fmt: skip
    with running(device(srv.port, points, poll_interval="20ms", max_fill=8, max_fill_bits=100)) as r:
        wait_until(lambda: r.driver.polls >= 5, 10, what="5 polls")
    for o in ["ABCD", "CDAB", "BADC", "DCBA"]:
        assert r.values(f"f_{o}")[0] == 123.456
    assert r.values("big")[0] == -123456789012
    assert r.values("name")[0] == "PYMODBUSTCP"
    assert r.values("temp")[0] == 0
    assert r.values("c0")[0] is False and r.values("c90")[0] is True
    polls = r.driver.polls
    # holding 0-25 (gaps of 2 and 6 filled), input 5, coils 0-90: three requests per poll.
    assert set(handler.requests) == {("holding", 0, 26), ("input", 5, 1), ("coil", 0, 91)}
    assert handler.requests["holding", 0, 26] == polls


def test_exception_02_from_pymodbustcp_splits_the_read(server: tuple[ModbusServer, DataBank, CountingHandler]) -> None:
    srv, bank, handler = server
    bank.set_holding_registers(58, [58, 59])
    points = [
        {"name": "last", "table": "holding", "address": 58, "type": "uint32"},
        {"name": "beyond", "table": "holding", "address": 61, "type": "uint16"},  # the bank ends at 59
    ]
    with running(device(srv.port, points, poll_interval="20ms")) as r:
        wait_until(lambda: r.driver.polls >= 4, 10, what="4 polls")
    assert r.values("last")[0] == (58 << 16) | 59
    assert all(x.quality == "good" for x in r.of("last"))
    beyond = r.of("beyond")[0]
    assert beyond.quality == "bad" and beyond.extra is not None and "exception 02" in beyond.extra["error"]
    assert handler.requests["holding", 58, 4] == 1  # refused once, then split for good
    assert handler.requests["holding", 58, 2] >= 3


def test_writes_reach_pymodbustcp(server: tuple[ModbusServer, DataBank, CountingHandler]) -> None:
    srv, bank, _ = server
    points = [
        {"name": "sp", "table": "holding", "address": 30, "type": "float32", "order": "DCBA"},
        {"name": "small", "table": "holding", "address": 32, "type": "int16"},
        {"name": "coil", "table": "coil", "address": 5},
    ]
    with running(device(srv.port, points, poll_interval="50ms")) as r:
        wait_until(lambda: r.ctx.state == "connected", 10, what="connected")
        r.driver.execute("write", {"point": "sp", "value": 123.456})
        r.driver.execute("write", {"point": "small", "value": -3})
        r.driver.execute("write", {"point": "coil", "value": True})
    assert bank.get_holding_registers(30, 3) == [0x79E9, 0xF642, 0xFFFD]
    assert bank.get_coils(5, 1) == [True]
