"""JSON Schema of the config file, with each installed driver's options, for editors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from edge_agent.config import AgentConfig
from edge_agent.registry import DriverNotFound, available_drivers, load_driver

__all__ = ["config_json_schema"]


def config_json_schema() -> dict[str, Any]:
    drivers = {}
    for name in available_drivers():
        try:
            drivers[name] = load_driver(name).config_model
        except (DriverNotFound, ImportError):
            continue  # a driver that cannot load is reported by `validate`, not here
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [(AgentConfig, "validation")]
    models += [(m, "validation") for m in drivers.values()]
    refs, schema = models_json_schema(models, ref_template="#/$defs/{model}")
    defs = schema["$defs"]
    root = dict(defs.pop(AgentConfig.__name__))
    variants = []
    for name, model in drivers.items():
        ref = refs[(model, "validation")]["$ref"]
        variants.append({"if": {"properties": {"driver": {"const": name}}}, "then": {"$ref": ref}})
    root["properties"]["devices"] = {
        "type": "array",
        "description": "one entry per device; `driver` selects the options",
        "items": {
            "type": "object",
            "required": ["id", "driver"],
            "properties": {"driver": {"enum": sorted(drivers)}, "id": {"type": "string"}},
            "allOf": variants,
        },
    }
    return {
        **root,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "edge-agent configuration",
        "$defs": defs,
    }
