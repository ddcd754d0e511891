"""YAML → typed configuration, reporting every error at once with file:line, device and field.

Technicians read these messages, so each one names where (file:line), what (device id, key path)
and what is expected. Driver options are validated by each driver's own config model.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from edge_agent.driver import DeviceConfig
from edge_agent.registry import DriverNotFound, load_driver
from edge_agent.topics import check_segment, check_topic_prefix
from edge_agent.units import Duration, Size

__all__ = [
    "AgentConfig",
    "BufferConfig",
    "ConfigError",
    "ConfigIssue",
    "GatewayConfig",
    "LoadedConfig",
    "MetricsConfig",
    "MqttConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayConfig(_Strict):
    id: str = Field(description="gateway id; part of every topic and of every reading id")
    site: str = Field(description="site (logistics centre) id; part of the default topic prefix")

    @field_validator("id", "site")
    @classmethod
    def _segment(cls, value: str) -> str:
        return check_segment(value, "value")


class TlsConfig(_Strict):
    ca: Path | None = Field(None, description="CA bundle that signed the broker's certificate")
    cert: Path | None = Field(None, description="client certificate (PEM)")
    key: Path | None = Field(None, description="client private key (PEM)")
    insecure: bool = Field(False, description="skip broker hostname verification (never in production)")


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version")
    client_id: str | None = Field(None, description="default: edge-agent-{gateway id}")
    username: str | None = None
    password: SecretStr | None = Field(None, description="use ${ENV_VAR} or ${credential:name}")
    tls: TlsConfig | None = None
    keepalive: Duration = 30.0
    topic_prefix: str | None = Field(None, description="default: warehouse/{site}/{gateway}")
    qos: Literal[1, 2] = 1
    max_inflight: int = Field(32, ge=1, le=1000, description="messages published and not yet acknowledged")
    max_message_size: Size = Field(256_000, ge=1024, description="readings per message are capped by size")
    reconnect_min: Duration = 0.5
    reconnect_max: Duration = 30.0

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return None if value is None else check_topic_prefix(value)


class BufferConfig(_Strict):
    path: Path = Field(description="SQLite file of the outbox (its folder is created)")
    max_size: Size = Field(512_000_000, ge=1_000_000, description="payload bytes kept while the broker is away")
    max_age: Duration | None = Field(None, description="readings older than this are dropped")
    when_full: Literal["drop_oldest", "reject_new"] = "drop_oldest"
    synchronous: Literal["full", "normal"] = Field(
        "full",
        description="full: each commit survives power loss (one fsync); normal: survives a crash or kill -9",
    )

    commit_interval: Duration = Field(
        0.02,
        le=1.0,
        description="commits are at least this far apart; readings arriving meanwhile share the next commit",
    )


class MetricsConfig(_Strict):
    listen: str | None = Field(
        None,
        description="host:port of the Prometheus endpoint, e.g. 127.0.0.1:9108 (off when absent)",
        pattern=r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):[0-9]{1,5}$",
    )
    interval: Duration = Field(30.0, ge=1.0, description="how often {topic_prefix}/metrics is published")
    cert_warn_days: float = Field(30, ge=0, description="warn this many days before the client certificate expires")


class SupervisorConfig(_Strict):
    restart_min: Duration = Field(1.0, gt=0, description="first wait before a failed device is started again")
    restart_max: Duration = Field(30.0, gt=0, description="the wait doubles up to this")


class AgentConfig(_Strict):
    gateway: GatewayConfig
    mqtt: MqttConfig = MqttConfig()
    buffer: BufferConfig
    metrics: MetricsConfig = MetricsConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    control_socket: Path | None = Field(
        None, description="Unix socket for `edge-agent status` (default: edge-agent.sock beside the buffer)"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    devices: list[dict[str, Any]] = Field(default_factory=list, description="one entry per device")

    @property
    def topic_prefix(self) -> str:
        return self.mqtt.topic_prefix or f"warehouse/{self.gateway.site}/{self.gateway.id}"

    @property
    def status_socket(self) -> Path:
        return self.control_socket or Path(self.buffer.path).parent / "edge-agent.sock"


# -- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    device: str | None  # "devices[2] (line1-plc)"
    field: str  # "points[0].address"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.device:
            parts.append(self.device)
        text = " ".join(parts)
        return f"{text} {self.field}: {self.message}" if self.field else f"{text}: {self.message}"


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.field))
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass
class LoadedConfig:
    agent: AgentConfig
    devices: list[DeviceConfig]
    source: str
    config_hash: str
    lines: dict[str, int] = field(default_factory=dict)  # device id -> line


# -- loading --------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([ConfigIssue(str(p), None, None, "", f"cannot read: {err.strerror}")]) from err
    return parse_config(text, str(p))


def parse_config(text: str, filename: str = "config.yaml") -> LoadedConfig:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(filename, line, None, "", f"not valid YAML: {err.problem}")]) from err
    if not isinstance(tree, CommentedMap):
        raise ConfigError(
            [ConfigIssue(filename, 1, None, "", "expected a mapping with gateway, mqtt, buffer, devices")]
        )

    issues: list[ConfigIssue] = []
    _substitute(tree, (), filename, issues)

    agent: AgentConfig | None = None
    try:
        agent = AgentConfig.model_validate(tree)
    except ValidationError as err:
        issues.extend(_issues_from(err, tree, (), AgentConfig, filename, None))

    devices: list[DeviceConfig] = []
    lines: dict[str, int] = {}
    raw_devices = tree.get("devices")
    if isinstance(raw_devices, CommentedSeq):
        devices = _validate_devices(raw_devices, tree, filename, issues, lines)

    if issues or agent is None:
        raise ConfigError(issues)
    return LoadedConfig(
        agent=agent,
        devices=devices,
        source=filename,
        config_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        lines=lines,
    )


def _validate_devices(
    raw_devices: CommentedSeq,
    tree: CommentedMap,
    filename: str,
    issues: list[ConfigIssue],
    lines: dict[str, int],
) -> list[DeviceConfig]:
    devices: list[DeviceConfig] = []
    seen_ids: dict[str, str] = {}
    claims: dict[str, tuple[str, str | None]] = {}
    for index, raw in enumerate(raw_devices):
        loc: tuple[Any, ...] = ("devices", index)
        line = _line_of(tree, loc)
        if not isinstance(raw, Mapping):
            issues.append(ConfigIssue(filename, line, f"devices[{index}]", "", "expected a mapping with id and driver"))
            continue
        device_id = raw.get("id")
        label = f"devices[{index}] ({device_id})" if device_id else f"devices[{index}]"
        if not device_id:
            issues.append(ConfigIssue(filename, line, label, "id", "required key missing"))
        elif str(device_id) in seen_ids:
            issues.append(
                ConfigIssue(
                    filename,
                    _line_of(tree, (*loc, "id")),
                    label,
                    "id",
                    f"duplicate device id, already used by {seen_ids[str(device_id)]}",
                )
            )
        else:
            seen_ids[str(device_id)] = label
        driver_name = raw.get("driver")
        if not driver_name:
            issues.append(ConfigIssue(filename, line, label, "driver", "required key missing"))
            continue
        try:
            driver_cls = load_driver(str(driver_name))
        except DriverNotFound as err:
            issues.append(ConfigIssue(filename, _line_of(tree, (*loc, "driver")), label, "driver", str(err)))
            continue
        model = driver_cls.config_model
        try:
            device = model.model_validate(raw)
        except ValidationError as err:
            issues.extend(_issues_from(err, tree, loc, model, filename, label))
            continue
        devices.append(device)
        lines[device.id] = line or 0
        for resource, share_key in device.claims().items():
            holder = claims.get(resource)
            if holder is None:
                claims[resource] = (label, share_key)
            elif share_key is None or holder[1] != share_key:
                what = resource.split(":", 1)[-1]
                why = " (shared buses need the same line settings)" if share_key and holder[1] else ""
                issues.append(
                    ConfigIssue(
                        filename, line, label, _claim_field(resource), f"{what} already used by {holder[0]}{why}"
                    )
                )
    return devices


def _claim_field(resource: str) -> str:
    kind = resource.split(":", 1)[0]
    return {"serial": "port", "camera": "source", "tcp": "port"}.get(kind, kind)


# -- ${...} references ----------------------------------------------------------------------

_REF = re.compile(r"\$\{([^}]*)\}")
CREDSTORE = Path("/etc/credstore")


def _resolve_ref(ref: str) -> str:
    """`${VAR}`, `${VAR:-default}`, `${file:/path}`, `${credential:name}` (systemd credentials)."""
    if ref.startswith("file:"):
        return _read_secret(Path(ref[5:]))
    if ref.startswith("credential:"):
        name = ref[11:]
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if directory:
            return _read_secret(Path(directory) / name)
        # Outside the service (a technician running `edge-agent validate`): the credential store
        # the unit loads from (LoadCredential=NAME:edge-agent.NAME searches /etc/credstore).
        stored = CREDSTORE / f"edge-agent.{name}"
        if stored.exists():
            return _read_secret(stored)
        raise ValueError(
            f"${{{ref}}}: $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit) and {stored} does not exist"
        )
    name, sep, default = ref.partition(":-")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(
            f"${{{ref}}} is not a valid reference: use ${{ENV_VAR}}, ${{file:/path}} or ${{credential:name}}"
        )
    value = os.environ.get(name)
    if value is None:
        if sep:
            return default
        raise ValueError(f"environment variable {name} is not set")
    return value


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from err


def _substitute(node: Any, loc: tuple[Any, ...], filename: str, issues: list[ConfigIssue]) -> None:
    items: Sequence[tuple[Any, Any]]
    if isinstance(node, CommentedMap):
        items = list(node.items())
    elif isinstance(node, CommentedSeq):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        if isinstance(value, str) and "${" in value:
            try:
                node[key] = _REF.sub(lambda m: _resolve_ref(m.group(1)), value)
            except ValueError as err:
                line = _line_in(node, key)
                device, path = _device_label(loc, key)
                issues.append(ConfigIssue(filename, line, device, path, str(err)))
        else:
            _substitute(value, (*loc, key), filename, issues)


def _device_label(loc: tuple[Any, ...], key: Any) -> tuple[str | None, str]:
    """Split a path under `devices[i]` into the device label and the field within it."""
    full = (*loc, key)
    if len(full) > 2 and full[0] == "devices" and isinstance(full[1], int):
        return f"devices[{full[1]}]", _dotted(full[2:])
    return None, _dotted(full)


# -- locating and phrasing pydantic errors --------------------------------------------------


def _line_in(node: Any, key: Any) -> int | None:
    try:
        if isinstance(node, CommentedMap):
            return int(node.lc.key(key)[0]) + 1
        if isinstance(node, CommentedSeq):
            return int(node.lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _line_of(tree: Any, loc: tuple[Any, ...]) -> int | None:
    """Line of the deepest node of `loc` that exists in the YAML tree."""
    line: int | None = 1
    node = tree
    for key in loc:
        in_map = isinstance(node, CommentedMap) and key in node
        in_seq = isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node)
        if in_map or in_seq:
            line = _line_in(node, key) or line
            node = node[key]
        else:
            break
    return line


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(model: type[BaseModel], path: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path` (for listing its keys)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _inner_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


_SECRET_KEYS = {"password", "token", "secret", "key"}  # their values never appear in messages


def _issues_from(
    err: ValidationError,
    tree: Any,
    base: tuple[Any, ...],
    model: type[BaseModel],
    filename: str,
    device: str | None,
) -> list[ConfigIssue]:
    issues = []
    for error in err.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = sorted(parent.model_fields) if parent is not None else []
            message = f"unknown key {loc[-1]!r}"
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            elif known:
                message += f" (expected one of: {', '.join(known)})"
        elif kind == "missing":
            message = "required key missing"
        elif (
            kind not in ("value_error", "assertion_error")
            and not isinstance(error.get("input"), dict | list)
            and not _SECRET_KEYS.intersection(str(p).lower() for p in loc)
        ):
            message += f" (got {error.get('input')!r})"
        if device is not None and loc[:1] == ("devices",):
            loc = loc[2:]
        issues.append(ConfigIssue(filename, _line_of(tree, (*base, *loc)), device, _dotted(loc), message))
    return issues
