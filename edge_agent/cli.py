"""`edge-agent run | validate | schema | demo | --version`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from edge_agent import __version__
from edge_agent.config import ConfigError, LoadedConfig, load_config, parse_config

log = logging.getLogger("edge_agent")

DEFAULT_CONFIG = "/etc/edge-agent/config.yaml"
FALLBACK_SOCKET = Path("/var/lib/edge-agent/edge-agent.sock")  # the packaged unit's state directory


def default_config_text() -> str:
    return files("edge_agent").joinpath("default_config.yaml").read_text(encoding="utf-8")


class JournalFormatter(logging.Formatter):
    """Prefixes each line with its syslog priority (`<4>`), which journald reads off stderr, so
    `journalctl -p warning -u edge-agent` shows warnings and errors only."""

    PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in self.PRIORITIES if record.levelno >= level), 7)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def setup_logging(level: str = "info") -> None:
    # Under systemd, journald adds the time and the unit (and reads the priority prefix);
    # elsewhere we add the time.
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Libraries that log every failed request: the drivers log state changes instead.
    for noisy in ("pymodbus",):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if level != "debug" else logging.DEBUG)


def _load(path: str | None) -> LoadedConfig:
    if path is None:
        return parse_config(default_config_text(), "<embedded default>")
    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent

    try:
        loaded = _load(args.config)
    except ConfigError as err:
        print(f"edge-agent: configuration has {len(err.issues)} error(s):\n{err}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or loaded.agent.log_level)
    Agent(loaded, config_path=args.config).run_forever()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """One screen for a technician: devices, last readings, errors, outbox, broker."""
    from edge_agent.metrics import read_status

    path = Path(args.socket) if args.socket else None
    if path is None:
        try:
            path = _load(args.config).agent.status_socket
        except ConfigError as err:
            print(
                f"edge-agent status: cannot read {args.config} ({len(err.issues)} error(s): "
                f"{err.issues[0]}); trying {FALLBACK_SOCKET}",
                file=sys.stderr,
            )
            path = FALLBACK_SOCKET
    try:
        snap = read_status(path)
    except OSError as err:
        print(
            f"edge-agent status: the agent does not answer on {path}: {err.strerror or err}\n"
            "  is it running? (systemctl status edge-agent)",
            file=sys.stderr,
        )
        return 3
    if args.json:
        print(json.dumps(snap, indent=2))
        return 0
    print(format_status(snap))
    return 0


def format_status(snap: dict[str, Any]) -> str:
    mq, box = snap["mqtt"], snap["outbox"]
    broker = "connected" if mq["connected"] else "DISCONNECTED"
    oldest = f", oldest {box['oldest_age_s']:.1f}s" if box["oldest_age_s"] is not None else ""
    lines = [
        f"edge-agent {snap['version']}  gateway {snap['gateway']}  up {snap['uptime_s']:.0f}s  "
        f"config {snap['config_hash']}",
        f"broker  {mq['broker']}  {broker}  reconnects {mq['reconnects']}  in flight {mq['inflight']}",
        f"outbox  {box['readings']} readings waiting ({box['bytes']} of {box['max_bytes']} bytes{oldest}); "
        f"dropped {box['dropped_oldest'] + box['dropped_age']}, rejected {box['rejected']}",
        "",
        f"{'DEVICE':<20} {'DRIVER':<10} {'STATE':<10} {'READINGS':>10} {'LAST':>8}  ERROR",
    ]
    for device, d in sorted(snap["devices"].items()):
        last = "-" if d["last_reading_age_s"] is None else f"{d['last_reading_age_s']:.1f}s"
        error = d["error"] or ""
        lines.append(f"{device:<20} {d['driver']:<10} {d['state']:<10} {d['accepted']:>10} {last:>8}  {error}")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.config)
    except ConfigError as err:
        print(f"{args.config}: {len(err.issues)} error(s)\n{err}", file=sys.stderr)
        return 1
    drivers = sorted({d.driver for d in loaded.devices})
    kinds = ", ".join(drivers) or "none"
    print(f"{args.config}: OK — gateway {loaded.agent.gateway.id}, {len(loaded.devices)} device(s) ({kinds})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from edge_agent.schema import config_json_schema

    print(json.dumps(config_json_schema(), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The embedded default against a private Mosquitto, printing what a subscriber receives."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_agent.agent import Agent
    from edge_agent.broker import LocalBroker

    setup_logging(args.log_level or "info")
    try:
        broker = LocalBroker().start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as err:
        print(f"edge-agent demo: cannot start a private broker: {err}", file=sys.stderr)
        return 1
    state = Path(args.state_dir).resolve()
    text = default_config_text().replace("port: 1883", f"port: {broker.port}")
    text = text.replace("./demo-state/buffer.db", str(state / "buffer.db"))
    demos = _start_demo_devices(state)
    text += "".join(d.yaml for d in demos)
    try:
        loaded = parse_config(text, "<embedded default>")
    except ConfigError as err:
        print(f"edge-agent demo: the demo configuration is invalid:\n{err}", file=sys.stderr)
        for d in demos:
            d.stop()
        broker.close()
        return 1
    prefix = loaded.agent.topic_prefix
    counts: dict[str, int] = {}
    last: dict[str, Any] = {}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if "/readings/" in msg.topic:
            body = json.loads(msg.payload)
            with lock:
                counts[body["device"]] = counts.get(body["device"], 0) + len(body["readings"])
                last[body["device"]] = body["readings"][-1]
        else:
            print(f"  {msg.topic}: {msg.payload.decode()}", flush=True)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-agent-demo-viewer")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"{prefix}/#", qos=1)
    sub.loop_start()
    agent = Agent(loaded)
    print(f"Demo: private mosquitto on 127.0.0.1:{broker.port}, outbox {state / 'buffer.db'}, topics {prefix}/#")
    print("Ctrl-C stops. Readings received by a subscriber:")
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent.start()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while not stop.wait(2.0):
            with lock:
                for device in sorted(counts):
                    print(f"  {device}: {counts[device]} readings; last {json.dumps(last[device])}", flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        agent.stop()
        sub.loop_stop()
        sub.disconnect()
        for demo in demos:
            demo.stop()
        broker.close()
    return 0


def _start_demo_devices(state: Path) -> list[Any]:
    """Simulators contributed by drivers (entry points `edge_agent.demos`) and their devices.

    Each entry point is a callable taking a work folder and returning an object with `yaml` (device
    entries to append under `devices:`) and `stop()`.
    """
    from importlib.metadata import entry_points

    demos = []
    state.mkdir(parents=True, exist_ok=True)
    for ep in sorted(entry_points(group="edge_agent.demos"), key=lambda ep: ep.name):
        try:
            demos.append(ep.load()(state / ep.name))
        except Exception as err:  # one simulator that cannot start must not stop the demo
            print(f"edge-agent demo: {ep.name} simulator not started: {err}", file=sys.stderr)
    return demos


def _add_probes(sub: Any, load: bool) -> None:
    """`edge-agent probe KIND ...`: technician tools contributed by drivers (entry points).

    They are imported only when `probe` is the command: OpenCV and friends cost tens of MB of
    RSS that `run` must not pay.
    """
    from importlib.metadata import entry_points

    probes = sorted(entry_points(group="edge_agent.probes"), key=lambda ep: ep.name)
    parser = sub.add_parser("probe", help="look at what a device sends (technician tools)")
    kinds = parser.add_subparsers(dest="probe", required=True)
    for ep in probes:
        if not load:
            kinds.add_parser(ep.name)
            continue
        try:
            configure = ep.load()
        except Exception as err:  # a broken plugin must not break the CLI
            log.debug("probe %s unavailable: %s", ep.name, err)
            continue
        kind = kinds.add_parser(
            ep.name, help=(configure.__doc__ or "").strip().splitlines()[0] if configure.__doc__ else None
        )
        kind.set_defaults(func=configure(kind))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Warehouse IoT edge agent")
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the agent in the foreground")
    p.add_argument("-c", "--config", help="YAML file (default: the embedded demo default)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a config file; exit 0 when valid")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", help="show the running agent's devices, outbox and broker state")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    p.add_argument("--json", action="store_true", help="the raw snapshot as JSON")
    p.add_argument("--socket", help="the agent's status socket (default: from the config)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("schema", help="print the JSON Schema of the config file")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("demo", help="run the embedded default against a private broker and show readings")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--state-dir", default=os.path.join(tempfile.gettempdir(), "edge-agent-demo"))
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_demo)

    argv = list(sys.argv[1:] if argv is None else argv)
    _add_probes(sub, load="probe" in argv[:1])

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
