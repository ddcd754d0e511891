"""edge-agent: warehouse device readings → durable SQLite outbox → MQTT.

The public API for drivers is what this module exports; drivers import nothing else from here
except `edge_agent.units` and `edge_agent.topics`.
"""

from importlib.metadata import PackageNotFoundError, version

from edge_agent.driver import CommandError, CommandSpec, DeviceConfig, DeviceError, DeviceState, Driver, DriverContext
from edge_agent.reading import Quality, Reading, format_ts
from edge_agent.units import Duration, Size, parse_duration, parse_size

try:
    __version__ = version("edge-agent")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CommandError",
    "CommandSpec",
    "DeviceConfig",
    "DeviceError",
    "DeviceState",
    "Driver",
    "DriverContext",
    "Duration",
    "Quality",
    "Reading",
    "Size",
    "__version__",
    "format_ts",
    "parse_duration",
    "parse_size",
]
