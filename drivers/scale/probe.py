"""`edge-agent probe serial PORT ...`: what a serial scale sends, and what the parsers make of it.

For technicians at a new scale: open the port with the given line settings, optionally send a
weight request every interval, and print every chunk of bytes as hex and text, followed by the
weights, replies and errors each protocol parser finds in it (all protocols when none is given),
and at the end how many frames each parser accepted and dropped.
"""

from __future__ import annotations

import argparse
import codecs
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from pydantic import ValidationError

from drivers.scale import ascii_profile, mt_sics, sma, toledo
from drivers.scale.frames import DataParity, Reply, ScaleError, Weight
from drivers.serial_link import SerialLineConfig, SerialLink
from edge_agent import DeviceError
from edge_agent.units import parse_duration

__all__ = ["configure", "describe", "probe"]


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Show what a serial port sends: raw frames and what each scale parser makes of them."""
    parser.add_argument("port", help="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--bytesize", type=int, choices=[5, 6, 7, 8], default=8)
    parser.add_argument("--parity", choices=["N", "E", "O", "M", "S"], default="N")
    parser.add_argument("--stopbits", type=float, choices=[1, 1.5, 2], default=1)
    parser.add_argument(
        "--protocol", choices=["mt-sics", "toledo", "sma", "ascii"], help="parser to apply (default: all but ascii)"
    )
    parser.add_argument("--pattern", help="ascii: regular expression with named groups (see the driver README)")
    parser.add_argument("--preset", choices=sorted(ascii_profile.PRESETS), help="ascii: a known format")
    parser.add_argument("--unit", help="ascii: unit when the pattern has none")
    parser.add_argument("--checksum", action="store_true", help="toledo: frames carry a checksum byte")
    parser.add_argument("--data-parity", choices=["none", "strip", "even", "odd"], default="none")
    parser.add_argument(
        "--send",
        help=r"request to send every --interval: SI or S (mt-sics), W (sma), or text with escapes, e.g. 'P\r\n'",
    )
    parser.add_argument("--interval", default="500ms", help="time between requests (default 500ms)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to listen; 0: until Ctrl-C")
    return lambda args: probe(args, sys.stdout)


def _decoders(args: argparse.Namespace) -> dict[str, Any]:
    parity: DataParity = args.data_parity
    decoders: dict[str, Any] = {}
    if args.protocol in (None, "mt-sics"):
        decoders["mt-sics"] = mt_sics.Decoder(data_parity=parity)
    if args.protocol in (None, "toledo"):
        decoders["toledo"] = toledo.Decoder(with_checksum=args.checksum, data_parity=parity)
    if args.protocol in (None, "sma"):
        decoders["sma"] = sma.Decoder(data_parity=parity)
    if args.protocol == "ascii":
        if args.preset:
            profile = ascii_profile.Profile.preset(args.preset, unit=args.unit)
        else:
            profile = ascii_profile.Profile(args.pattern or "", unit=args.unit)
        decoders["ascii"] = ascii_profile.Decoder(profile, data_parity=parity)
    return decoders


def _request(args: argparse.Namespace) -> bytes:
    if not args.send:
        return b""
    if args.protocol == "mt-sics" and args.send in ("S", "SI"):
        return mt_sics.command(args.send)
    if args.protocol == "sma" and args.send in ("W", "H"):
        return sma.command(args.send)
    return codecs.decode(args.send, "unicode_escape").encode("latin-1")


def describe(event: Weight | Reply | ScaleError) -> str:
    """One line for a decoded event."""
    if isinstance(event, Weight):
        parts = [f"weight {event.value if event.value is not None else '-'} {event.unit}".rstrip()]
        parts.append("stable" if event.stable else "in motion")
        if event.net is not None:
            parts.append("net" if event.net else "gross")
        if event.tare is not None:
            parts.append(f"tare {event.tare}")
        if event.error is not None:
            parts.append(f"BAD: {event.error}")
        return ", ".join(parts)
    if isinstance(event, Reply):
        value = f" {event.value} {event.unit}" if event.value is not None else ""
        return f"reply to {event.command}: {event.message}{value}"
    return f"scale error {event.code}: {event.message}"


def probe(args: argparse.Namespace, out: TextIO) -> int:
    try:
        line = SerialLineConfig(
            port=args.port, baudrate=args.baudrate, bytesize=args.bytesize, parity=args.parity, stopbits=args.stopbits
        )
        interval = parse_duration(args.interval)
        decoders = _decoders(args)
    except (ValidationError, ValueError) as err:
        print(f"edge-agent probe serial: {err}", file=sys.stderr)
        return 2
    request = _request(args)
    link = SerialLink(line, timeout=0.05, exclusive=False)
    try:
        link.open()
    except DeviceError as err:
        print(f"edge-agent probe serial: {err}", file=sys.stderr)
        return 1
    print(
        f"{line.port} at {line.line_settings()}, parsers: {', '.join(decoders)}"
        + (f", sending {request!r} every {interval:g}s" if request else ""),
        file=out,
        flush=True,
    )
    accepted = dict.fromkeys(decoders, 0)
    t0 = time.monotonic()
    next_request = t0
    try:
        while not args.seconds or time.monotonic() - t0 < args.seconds:
            if request and time.monotonic() >= next_request:
                link.write(request)
                next_request = time.monotonic() + interval
                print(f"{time.monotonic() - t0:8.3f} -> {request!r}", file=out, flush=True)
            data = link.read()
            if not data:
                continue
            print(f"{time.monotonic() - t0:8.3f} <- {data.hex(' ')}  {data!r}", file=out, flush=True)
            for name, decoder in decoders.items():
                for event in decoder.feed(data):
                    accepted[name] += 1
                    print(f"{'':11}{name}: {describe(event)}", file=out, flush=True)
    except DeviceError as err:
        print(f"edge-agent probe serial: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        link.close()
    for name, decoder in decoders.items():
        print(f"{name}: {accepted[name]} frames understood, {decoder.dropped} dropped", file=out)
    return 0
