"""`edge-agent probe modbus`: read registers once and print them decoded as every type and order.

    edge-agent probe modbus --host 10.0.0.20 --port 502 --unit 1 --table holding --address 0 --count 10
    edge-agent probe modbus --serial /dev/ttyUSB0 --baudrate 19200 --parity N --unit 7 --table input

For technicians mapping an unknown device: the value they expect shows up in one column, which
names the `type` and `order` to put in the YAML.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.modbus.codec import decode_registers, describe_exception

__all__ = ["configure", "format_registers"]

ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
_READERS = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Read Modbus registers once and print them decoded as each type and byte order."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Modbus TCP device (IP address or name)")
    where.add_argument("--serial", metavar="PORT", help="Modbus RTU serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--port", type=int, default=502, help="TCP port (default 502)")
    parser.add_argument("--unit", type=int, default=1, help="unit (slave) id (default 1)")
    parser.add_argument("--table", choices=sorted(_READERS), default="holding")
    parser.add_argument("--address", type=int, default=0, help="first address, 0-based (40001 is holding 0)")
    parser.add_argument("--count", type=int, default=10, help="registers (or bits) to read")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the answer")
    parser.add_argument("--baudrate", type=int, default=19200)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="E")
    parser.add_argument("--bytesize", type=int, choices=[7, 8], default=8)
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    return run


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    limit = 2000 if args.table in ("coil", "discrete") else 125
    if not 1 <= args.count <= limit or not 0 <= args.address <= 65535:
        print(f"--count must be 1-{limit} and --address 0-65535", file=sys.stderr)
        return 2
    client: ModbusTcpClient | ModbusSerialClient
    if args.host:
        client = ModbusTcpClient(args.host, port=args.port, timeout=args.timeout, retries=0)
        where = f"{args.host}:{args.port}"
    else:
        client = ModbusSerialClient(
            args.serial,
            baudrate=args.baudrate,
            parity=args.parity,
            bytesize=args.bytesize,
            stopbits=args.stopbits,
            timeout=args.timeout,
            retries=0,
        )
        where = args.serial
    if not client.connect():
        print(f"cannot connect to {where}", file=sys.stderr)
        return 2
    try:
        t0 = time.perf_counter()
        response: Any = getattr(client, _READERS[args.table])(args.address, count=args.count, device_id=args.unit)
        elapsed = (time.perf_counter() - t0) * 1000
    except ModbusException as err:
        print(f"{where} unit {args.unit}: no answer ({err})", file=sys.stderr)
        return 1
    finally:
        client.close()  # type: ignore[no-untyped-call]
    if response.isError():
        print(f"{where} unit {args.unit}: {describe_exception(int(response.exception_code))}", file=sys.stderr)
        return 1
    end = args.address + args.count - 1
    print(f"{args.table} {args.address}-{end} of {where} unit {args.unit} ({elapsed:.1f} ms)", file=out)
    if args.table in ("coil", "discrete"):
        bits = list(response.bits)[: args.count]
        for k in range(0, len(bits), 16):
            row = " ".join("1" if b else "0" for b in bits[k : k + 16])
            print(f"{args.address + k:>6}  {row}", file=out)
        return 0
    print(format_registers(args.address, list(response.registers)), file=out)
    return 0


def format_registers(address: int, words: Sequence[int]) -> str:
    """Registers as a table: each register alone, then 32/64-bit values in every order, then text."""
    lines = [f"{'addr':>6}  {'hex':>4}  {'uint16':>6}  {'int16':>6}  bits (15..0)"]
    for k, w in enumerate(words):
        lines.append(f"{address + k:>6}  {w:04X}  {w:>6}  {decode_registers([w], 'int16'):>6}  {w:016b}")
    for count, bits, uw, iw, precision in ((2, 32, 10, 11, ".7g"), (4, 64, 20, 20, ".15g")):
        if len(words) < count:
            break
        lines += ["", f"{'addr':>6}  order  {'uint' + str(bits):>{uw}}  {'int' + str(bits):>{iw}}  float{bits}"]
        for k in range(len(words) - count + 1):
            for order in ORDERS:
                group = words[k : k + count]
                u = decode_registers(group, f"uint{bits}", order)
                i = decode_registers(group, f"int{bits}", order)
                f = decode_registers(group, f"float{bits}", order)
                head = f"{address + k:>6}" if order == "ABCD" else " " * 6
                lines.append(f"{head}  {order}   {u:>{uw}}  {i:>{iw}}  {f:{precision}}")
    text = decode_registers(words, "string", encoding="latin-1")
    swapped = decode_registers(words, "string", byte_swap=True, encoding="latin-1")
    lines += ["", f"string:             {_printable(str(text))!r}", f"string (byte_swap): {_printable(str(swapped))!r}"]
    return "\n".join(lines)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "." for c in text)
