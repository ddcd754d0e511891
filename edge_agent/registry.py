"""Drivers are found through the entry-point group `edge_agent.drivers`; the runtime names none."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from edge_agent.driver import Driver

__all__ = ["GROUP", "DriverNotFound", "available_drivers", "load_driver"]

GROUP = "edge_agent.drivers"


class DriverNotFound(LookupError):
    pass


@functools.cache
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_drivers() -> list[str]:
    return sorted(_entry_points())


@functools.cache
def load_driver(name: str) -> type[Driver]:
    ep = _entry_points().get(name)
    if ep is None:
        known = ", ".join(available_drivers()) or "none installed"
        raise DriverNotFound(f"unknown driver {name!r} (available: {known})")
    try:
        cls = ep.load()  # type: ignore[attr-defined]
    except (ImportError, AttributeError) as err:
        raise DriverNotFound(f"driver {name!r} is installed but cannot load: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverNotFound(f"entry point {name!r} does not name a Driver subclass")
    return cls
