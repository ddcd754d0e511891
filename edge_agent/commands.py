"""Commands from the hub: `{prefix}/cmd/{device}/{command}` → allow-list → driver → reply.

Deny by default: only commands a device's YAML declares exist, writes carry their allowed values or
range, and a command may be rate-limited. Every command, accepted or refused, is logged with its
origin and outcome. Drivers run commands on a worker thread, never on paho's network thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent.driver import CommandError, CommandSpec, DeviceConfig, Driver

__all__ = ["CommandRouter", "Refused"]

log = logging.getLogger("edge_agent.commands")


class Refused(Exception):
    """A command that is not carried out; the message goes back to the hub."""


@dataclass
class CommandStats:
    accepted: int = 0
    refused: int = 0
    failed: int = 0


class CommandRouter:
    def __init__(
        self,
        *,
        prefix: str,
        devices: Callable[[], dict[str, DeviceConfig]],
        driver_of: Callable[[str], Driver | None],
    ) -> None:
        self.prefix = prefix
        self._devices = devices
        self._driver_of = driver_of
        self._last_accepted: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="command")
        self.stats = CommandStats()
        self._client: mqtt.Client | None = None

    @property
    def topic_filter(self) -> str:
        return f"{self.prefix}/cmd/+/+"

    def attach(self, client: mqtt.Client) -> None:
        """Route messages of the command topics; subscribe on every (re)connect."""
        self._client = client
        client.message_callback_add(self.topic_filter, self._on_message)

    def subscribe(self, client: mqtt.Client) -> None:
        if client.protocol == mqtt.MQTTv5:
            # Retain-as-published shows a retained command as such even when it arrives live.
            options = SubscribeOptions(qos=1, retainAsPublished=True)
            client.subscribe(self.topic_filter, options=options)
        else:
            client.subscribe(self.topic_filter, qos=1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- paho's network thread: parse and check only, never block -------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic[len(self.prefix) + 1 :].split("/")
        device, command = (parts[1], parts[2]) if len(parts) == 3 else ("?", "?")
        props = getattr(msg, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        request_id: Any = None
        origin = "hub"
        try:
            try:
                request = orjson.loads(msg.payload) if msg.payload else {}
            except orjson.JSONDecodeError as err:
                raise Refused(f"malformed JSON: {err}") from err
            if not isinstance(request, dict):
                raise Refused('the request must be a JSON object like {"id": "...", "value": 1.2}')
            request_id = request.get("id")
            origin = str(request.get("origin", origin))[:64]
            if msg.retain:
                raise Refused("retained commands are ignored (a retained command would run again on every connect)")
            spec, params = self._check(device, command, request)
        except Refused as why:
            self._finish(device, command, request_id, origin, response_topic, correlation, error=str(why))
            return
        self._pool.submit(self._run, device, command, spec, params, request_id, origin, response_topic, correlation)

    def _check(self, device: str, command: str, request: dict[str, Any]) -> tuple[CommandSpec, dict[str, Any]]:
        config = self._devices().get(device)
        if config is None:
            raise Refused(f"unknown device {device!r}")
        spec = next((c for c in config.commands if c.name == command), None)
        if spec is None:
            allowed = ", ".join(c.name for c in config.commands) or "none"
            raise Refused(f"command {command!r} is not allowed for device {device!r} (allowed: {allowed})")
        params: dict[str, Any] = {}
        if spec.write is not None:
            if "value" not in request:
                raise Refused('missing "value"')
            value = request["value"]
            check_value(spec, value)
            params = {"point": spec.write, "value": value}
        elif "value" in request:
            raise Refused(f"command {command!r} takes no value")
        if spec.min_interval:
            with self._lock:
                last = self._last_accepted.get((device, command))
                now = time.monotonic()
                if last is not None and now - last < spec.min_interval:
                    raise Refused(
                        f"too frequent: the last {command!r} was accepted {now - last:.2f}s ago, "
                        f"min_interval is {spec.min_interval:g}s"
                    )
                self._last_accepted[(device, command)] = now
        return spec, params

    # -- worker thread ---------------------------------------------------------------------------
    def _run(
        self,
        device: str,
        command: str,
        spec: CommandSpec,
        params: dict[str, Any],
        request_id: Any,
        origin: str,
        response_topic: str | None,
        correlation: bytes | None,
    ) -> None:
        driver = self._driver_of(device)
        if driver is None:
            self._finish(
                device,
                command,
                request_id,
                origin,
                response_topic,
                correlation,
                error=f"device {device!r} is not running (unavailable or restarting)",
            )
            return
        action = "write" if spec.write is not None else str(spec.action)
        try:
            result = driver.execute(action, params)
        except CommandError as err:
            self.stats.failed += 1
            self._finish(device, command, request_id, origin, response_topic, correlation, error=str(err))
            return
        except Exception as err:  # a driver bug must not kill the worker
            log.exception("Command %s/%s: driver failed", device, command)
            self.stats.failed += 1
            self._finish(
                device, command, request_id, origin, response_topic, correlation, error=f"{type(err).__name__}: {err}"
            )
            return
        self._finish(device, command, request_id, origin, response_topic, correlation, result=result, ok=True)

    def _finish(
        self,
        device: str,
        command: str,
        request_id: Any,
        origin: str,
        response_topic: str | None,
        correlation: bytes | None,
        *,
        error: str | None = None,
        result: Any = None,
        ok: bool = False,
    ) -> None:
        reply: dict[str, Any] = {"id": request_id, "ok": ok}
        if ok:
            self.stats.accepted += 1
            if result is not None:
                reply["result"] = result
            log.info(
                "Command %s/%s id=%r from %s: done%s",
                device,
                command,
                request_id,
                origin,
                f" ({result!r})" if result is not None else "",
            )
        else:
            if error is not None and not error.startswith("device"):
                self.stats.refused += 1
            reply["error"] = error
            log.warning("Command %s/%s id=%r from %s: refused: %s", device, command, request_id, origin, error)
        client = self._client
        if client is None:
            return
        payload = orjson.dumps(reply, default=str)
        client.publish(f"{self.prefix}/cmd/{device}/{command}/reply", payload, qos=1)
        if response_topic:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if correlation is not None:
                props.CorrelationData = correlation
            client.publish(response_topic, payload, qos=1, properties=props)


def check_value(spec: CommandSpec, value: Any) -> None:
    """The value must be one of `values`, or a finite number within `min`/`max`."""
    if spec.values is not None:
        if not any(_same(value, allowed) for allowed in spec.values):
            allowed = ", ".join(orjson.dumps(v).decode() for v in spec.values)
            raise Refused(f"value {orjson.dumps(value, default=str).decode()} is not allowed (allowed: {allowed})")
        return
    if not _is_number(value) or not math.isfinite(value):
        raise Refused(f"value must be a number, got {orjson.dumps(value, default=str).decode()}")
    if spec.min is not None and value < spec.min:
        raise Refused(f"value {value} is below the minimum {spec.min:g}")
    if spec.max is not None and value > spec.max:
        raise Refused(f"value {value} is above the maximum {spec.max:g}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, allowed: Any) -> bool:
    """Equal and of the same kind: `true` is not `1`, `"1"` is not `1`, `1.0` is `1`."""
    if _is_number(value) and _is_number(allowed):
        return bool(value == allowed)
    return type(value) is type(allowed) and value == allowed
